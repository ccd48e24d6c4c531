<?php

namespace Checkout\Laravel\Console;

use Illuminate\Console\Command;
use Illuminate\Database\DatabaseManager;
use Illuminate\Database\QueryException;

/**
 * checkout_monitor(hours) as a console table: what happened to the
 * checkouts started in the window, and what is held now.  Needs a role
 * granted checkout_admin (config checkout.admin_connection).
 */
class MonitorCommand extends Command
{
    use UsesAdminConnection;

    protected $signature = 'checkout:monitor
        {--hours=24 : the window: checkouts started in the last N hours}';

    protected $description = 'Checkout figures: outcomes, failures by phase and code, durations, locks held';

    public function handle(DatabaseManager $db): int
    {
        try {
            $row = (array) $this->adminConnection($db)->selectOne('select * from checkout_monitor(?)', [(int) $this->option('hours')], false);
        } catch (QueryException $e) {
            return $this->failed($e);
        }

        $rows = [];
        foreach ($row as $figure => $value) {
            $rows[] = [$figure, match (true) {
                $value === null => '-',
                $figure === 'success_rate' => sprintf('%.2f %%', 100 * $value),
                str_starts_with($figure, 'failures_by_') => self::counts($value),
                default => (string) $value,
            }];
        }
        $this->line(sprintf('Checkouts started in the last %d hours; locks and units held now.', (int) $this->option('hours')));
        $this->table(['figure', 'value'], $rows);

        return self::SUCCESS;
    }

    /** {"price_lock": 2, "inventory_reservation": 1} -> "inventory_reservation 1, price_lock 2" */
    private static function counts(string $json): string
    {
        $counts = json_decode($json, true, flags: JSON_THROW_ON_ERROR);
        ksort($counts);

        return $counts === [] ? '-' : implode(', ', array_map(fn ($k, $n) => "$k $n", array_keys($counts), $counts));
    }
}
