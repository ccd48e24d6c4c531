<?php

namespace Checkout\Laravel\Console;

use Checkout\Laravel\NotificationDispatcher;
use Illuminate\Console\Command;
use Illuminate\Contracts\Events\Dispatcher;
use Illuminate\Database\DatabaseManager;
use PDO;

/**
 * LISTEN on the checkout channel and dispatch a Laravel event per
 * notification (CompensationRequired, CheckoutCompleted, CheckoutFailed,
 * CheckoutExpired).  Run it under a supervisor: it exits non-zero when the
 * connection drops, and notifications sent while nobody listens are lost
 * (checkout.compensations stays the durable to-do list).
 */
class ListenCommand extends Command
{
    protected $signature = 'checkout:listen
        {--max-events=0 : stop after dispatching this many events (0: never)}
        {--seconds=0 : stop after this many seconds (0: never)}';

    protected $description = 'Dispatch Laravel events for the checkout extension\'s NOTIFYs';

    public function handle(DatabaseManager $db, Dispatcher $events): int
    {
        $config = $this->laravel['config']['checkout'];
        $connection = $db->connection($config['listen_connection'] ?? $config['connection'] ?? null);
        $channel = (string) $config['channel'];
        $connection->unprepared('LISTEN "'.str_replace('"', '""', $channel).'"');
        $pdo = $connection->getPdo();
        $dispatcher = new NotificationDispatcher($connection, $events);

        $maxEvents = (int) $this->option('max-events');
        $seconds = (float) $this->option('seconds');
        $deadline = $seconds > 0 ? microtime(true) + $seconds : null;
        $this->info("listening on \"$channel\"");
        $count = 0;
        while ($maxEvents === 0 || $count < $maxEvents) {
            $waitMs = 1000;
            if ($deadline !== null) {
                $left = $deadline - microtime(true);
                if ($left <= 0) {
                    break;
                }
                $waitMs = (int) max(1, min($waitMs, ceil($left * 1000)));
            }
            $note = $pdo->pgsqlGetNotify(PDO::FETCH_ASSOC, $waitMs);
            if ($note === false || $note['message'] !== $channel) {
                continue;
            }
            $dispatched = $dispatcher->dispatch((string) $note['payload'], $why);
            foreach ($dispatched as $event) {
                $count++;
                $this->line(sprintf('%s lock %d%s', class_basename($event), $event->lockId,
                    isset($event->compensationId) ? " compensation {$event->compensationId}" : ''));
            }
            if ($dispatched === []) {
                $this->warn("skipped: $why");
            }
        }

        return self::SUCCESS;
    }
}
