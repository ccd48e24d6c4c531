<?php

namespace Checkout\Laravel\Console;

use Illuminate\Console\Command;
use Illuminate\Database\DatabaseManager;
use Illuminate\Database\QueryException;

/**
 * Expire the checkout locks past their deadline now, with rollback (or roll
 * forward when paid) - what the background worker does.  For setups without
 * the worker: schedule it every minute.  Needs a role granted checkout_admin
 * (config checkout.admin_connection).
 */
class PruneExpiredCommand extends Command
{
    use UsesAdminConnection;

    protected $signature = 'checkout:prune-expired
        {--batch=1000 : locks expired per transaction}';

    protected $description = 'Expire overdue checkout locks, with rollback (checkout_cleanup_expired)';

    public function handle(DatabaseManager $db): int
    {
        $connection = $this->adminConnection($db);
        $batch = (int) $this->option('batch');
        $total = 0;
        try {
            // one transaction per batch, until a batch comes back short
            do {
                $expired = (int) $connection->selectOne('select checkout_cleanup_expired(?) as n', [$batch], false)->n;
                $total += $expired;
            } while ($expired === $batch);
        } catch (QueryException $e) {
            if ($total > 0) {
                $this->line(sprintf('Expired %d checkout %s before the error.', $total, $total === 1 ? 'lock' : 'locks'));
            }

            return $this->failed($e);
        }
        $this->line(sprintf('Expired %d checkout %s.', $total, $total === 1 ? 'lock' : 'locks'));

        return self::SUCCESS;
    }
}
