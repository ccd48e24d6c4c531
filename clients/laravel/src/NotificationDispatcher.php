<?php

namespace Checkout\Laravel;

use Checkout\Laravel\Events\CheckoutCompleted;
use Checkout\Laravel\Events\CheckoutExpired;
use Checkout\Laravel\Events\CheckoutFailed;
use Checkout\Laravel\Events\CompensationRequired;
use DateTimeImmutable;
use Illuminate\Contracts\Events\Dispatcher;
use Illuminate\Database\Connection;

/**
 * Turns one NOTIFY payload of the checkout channel into a Laravel event.
 *
 * Payloads carry identifiers only: {"event":"refund_required","lock_id":12,
 * "compensation_id":5}, {"event":"completed","lock_id":12}, also "failed",
 * "expired", "void_required".  Extra keys are ignored.  Any role that can
 * connect may NOTIFY, so a compensation is dispatched only from its
 * unresolved row in checkout.compensations (with that id, lock and kind);
 * a payload naming none is skipped.
 */
class NotificationDispatcher
{
    private const EVENTS = [
        'completed' => CheckoutCompleted::class,
        'failed' => CheckoutFailed::class,
        'expired' => CheckoutExpired::class,
    ];

    /** compensation ids dispatched by this process (for payloads without compensation_id) */
    private array $dispatched = [];

    public function __construct(private readonly Connection $connection, private readonly Dispatcher $events)
    {
    }

    /**
     * Dispatch the events for one payload; returns them, or [] with `$why`
     * saying why nothing was dispatched.
     */
    public function dispatch(string $payload, ?string &$why = null): array
    {
        $why = null;
        $note = json_decode($payload, true);
        $event = is_array($note) ? ($note['event'] ?? null) : null;
        $lockId = is_array($note) ? ($note['lock_id'] ?? null) : null;
        if (! is_string($event) || ! is_int($lockId) || $lockId < 1) {
            $why = 'not a checkout notification';

            return [];
        }
        if (isset(self::EVENTS[$event])) {
            $class = self::EVENTS[$event];
            $dispatched = [new $class($lockId)];
        } elseif ($event === 'void_required' || $event === 'refund_required') {
            $dispatched = array_map(
                fn (object $row) => new CompensationRequired(
                    (int) $row->compensation_id, (int) $row->lock_id, $row->kind, $row->reference,
                    (int) $row->amount, new DateTimeImmutable($row->created_at)),
                $this->openCompensations($lockId, $event, $note['compensation_id'] ?? null));
            if ($dispatched === []) {
                $why = "no unresolved $event compensation for lock $lockId".
                    (isset($note['compensation_id']) ? ' with id '.json_encode($note['compensation_id']) : '');

                return [];
            }
        } else {
            $why = "unknown event \"$event\"";

            return [];
        }
        foreach ($dispatched as $object) {
            $this->events->dispatch($object);
            if ($object instanceof CompensationRequired) {
                $this->dispatched[$object->compensationId] = true;
            }
        }

        return $dispatched;
    }

    private function openCompensations(int $lockId, string $kind, mixed $compensationId): array
    {
        $sql = 'select compensation_id, lock_id, kind, reference, amount, created_at
                from checkout.compensations
                where lock_id = ? and kind = ? and resolved_at is null';
        if ($compensationId !== null) {
            if (! is_int($compensationId)) {
                return [];
            }

            return $this->connection->select($sql.' and compensation_id = ?', [$lockId, $kind, $compensationId], false);
        }
        // A server older than 0.2.0 names no compensation_id: every open one
        // of that lock and kind that this listener has not dispatched yet.
        $rows = $this->connection->select($sql.' order by compensation_id', [$lockId, $kind], false);

        return array_values(array_filter($rows, fn (object $row) => ! isset($this->dispatched[(int) $row->compensation_id])));
    }
}
