<?php

namespace Checkout\Laravel\Console;

use Illuminate\Console\Command;
use Illuminate\Database\DatabaseManager;

/**
 * Expire the checkout locks past their deadline now, with rollback (or roll
 * forward when paid) - what the background worker does.  For setups without
 * the worker: schedule it every minute.  Needs a role granted checkout_admin
 * (config checkout.admin_connection).
 */
class CleanupExpiredLocksCommand extends Command
{
    protected $signature = 'checkout:cleanup-expired-locks
        {--batch=1000 : locks expired per transaction}';

    protected $description = 'Expire overdue checkout locks (checkout_cleanup_expired)';

    public function handle(DatabaseManager $db): int
    {
        $config = $this->laravel['config']['checkout'];
        $connection = $db->connection($config['admin_connection'] ?? $config['connection'] ?? null);
        $batch = (int) $this->option('batch');
        $total = 0;
        // one transaction per batch, until a batch comes back short
        do {
            $expired = (int) $connection->selectOne('select checkout_cleanup_expired(?) as n', [$batch], false)->n;
            $total += $expired;
        } while ($expired === $batch);
        $this->line(sprintf('Expired %d checkout %s.', $total, $total === 1 ? 'lock' : 'locks'));

        return self::SUCCESS;
    }
}
