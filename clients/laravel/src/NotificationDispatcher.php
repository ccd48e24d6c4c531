<?php

namespace Checkout\Laravel;

use Checkout\Laravel\Events\CheckoutExpired;
use Checkout\Laravel\Events\CompensationRequired;
use DateTimeImmutable;
use Illuminate\Contracts\Events\Dispatcher;
use Illuminate\Database\Connection;

/**
 * Turns one NOTIFY payload of the checkout channel into a Laravel event:
 * what happens outside a request.  "expired" becomes CheckoutExpired;
 * "void_required" and "refund_required" become CompensationRequired.
 * "completed" and "failed" (notified only when the DBA adds them to
 * checkout.notify_events) are skipped: the service call that made them
 * dispatched CheckoutCompleted / CheckoutFailed after its commit.
 *
 * Payloads carry identifiers only: {"event":"refund_required","lock_id":12,
 * "compensation_id":5}, {"event":"expired","lock_id":12}.  Extra keys are
 * ignored.  Any role that can connect may NOTIFY, so a compensation is
 * dispatched only from its unresolved row in checkout.compensations (with
 * that id, lock and kind); a payload naming none is skipped.
 */
class NotificationDispatcher
{
    /** events the service calls dispatch themselves */
    private const CALLS_DISPATCH = ['completed', 'failed'];

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
        if ($event === 'expired') {
            $dispatched = [new CheckoutExpired($lockId)];
        } elseif (in_array($event, self::CALLS_DISPATCH, true)) {
            $why = "$event lock $lockId: dispatched by the call that made it";

            return [];
        } elseif ($event === 'void_required' || $event === 'refund_required') {
            $dispatched = array_map(fn (object $row) => self::compensation($row),
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

    /**
     * Dispatch CompensationRequired for every unresolved compensation made
     * at least `$minAgeSeconds` ago (checkout:dispatch-compensations): the ones a
     * listener missed while it was down.  Returns the events.
     */
    public function dispatchUnresolved(int $minAgeSeconds = 0): array
    {
        $rows = $this->connection->select(
            'select compensation_id, lock_id, kind, reference, amount, created_at
             from checkout.compensations
             where resolved_at is null and created_at <= now() - make_interval(secs => ?)
             order by compensation_id', [$minAgeSeconds], false);
        $events = array_map(fn (object $row) => self::compensation($row), $rows);
        foreach ($events as $event) {
            $this->events->dispatch($event);
        }

        return $events;
    }

    private static function compensation(object $row): CompensationRequired
    {
        return new CompensationRequired((int) $row->compensation_id, (int) $row->lock_id, $row->kind, $row->reference,
            (int) $row->amount, new DateTimeImmutable($row->created_at));
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
