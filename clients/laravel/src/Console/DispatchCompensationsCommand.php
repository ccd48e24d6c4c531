<?php

namespace Checkout\Laravel\Console;

use Checkout\Laravel\NotificationDispatcher;
use Illuminate\Console\Command;
use Illuminate\Contracts\Events\Dispatcher;
use Illuminate\Database\DatabaseManager;

/**
 * Dispatch CompensationRequired for every void or refund still unresolved in
 * checkout.compensations: the durable to-do list, for the notifications
 * nobody heard (checkout:listen was down or restarting).  Schedule it every
 * few minutes; a listener marks each one done with
 * Checkout::resolveCompensation(), which answers true once, so a
 * compensation dispatched twice is acted on once.
 */
class DispatchCompensationsCommand extends Command
{
    protected $signature = 'checkout:dispatch-compensations
        {--older-than=60 : only compensations made at least this many seconds ago (checkout:listen has the newer ones)}';

    protected $description = 'Dispatch CompensationRequired for the unresolved voids and refunds';

    public function handle(DatabaseManager $db, Dispatcher $events): int
    {
        $olderThan = (int) $this->option('older-than');
        if ($olderThan < 0) {
            $this->error('--older-than must be 0 or more seconds');

            return self::FAILURE;
        }
        $config = $this->laravel['config']['checkout'];
        $dispatcher = new NotificationDispatcher($db->connection($config['connection'] ?? null), $events);
        $dispatched = $dispatcher->dispatchUnresolved($olderThan);
        foreach ($dispatched as $event) {
            $this->line(sprintf('CompensationRequired lock %d compensation %d (%s)', $event->lockId, $event->compensationId, $event->kind));
        }
        $this->line(sprintf('Dispatched %d unresolved %s.', count($dispatched), count($dispatched) === 1 ? 'compensation' : 'compensations'));

        return self::SUCCESS;
    }
}
