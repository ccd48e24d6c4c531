<?php

namespace Checkout\Laravel\Console;

use Illuminate\Database\DatabaseManager;

/** The old name of checkout:prune-expired, kept for schedules that use it; says so on every run. */
class CleanupExpiredLocksCommand extends PruneExpiredCommand
{
    protected $signature = 'checkout:cleanup-expired-locks
        {--batch=1000 : locks expired per transaction}';

    protected $description = 'Deprecated: use checkout:prune-expired';

    protected $hidden = true;

    public function handle(DatabaseManager $db): int
    {
        $this->warn('checkout:cleanup-expired-locks is deprecated and will be removed: use checkout:prune-expired.');

        return parent::handle($db);
    }
}
