<?php

// checkout:listen on real NOTIFYs from another process: what happens outside
// a request becomes a Laravel event (CheckoutExpired, CompensationRequired
// built from the unresolved checkout.compensations row); "completed" and
// "failed" are skipped, said so (the call that made them dispatched the
// event: 07_events.php); nothing for a rolled-back checkout, junk, another
// channel, or a NOTIFY naming no unresolved compensation.

require __DIR__.'/lib/bootstrap.php';

use Checkout\Laravel\Events\CheckoutCompleted;
use Checkout\Laravel\Events\CheckoutExpired;
use Checkout\Laravel\Events\CheckoutFailed;
use Checkout\Laravel\Events\CompensationRequired;
use Checkout\Laravel\Facades\Checkout;
use Checkout\Laravel\NotificationDispatcher;
use CheckoutTest\Tap;
use CheckoutTest\TestApp;
use CheckoutTest\TestDatabase;
use Illuminate\Support\Facades\Artisan;
use Illuminate\Support\Facades\DB;
use Illuminate\Support\Facades\Event;

$db = new TestDatabase('listener');
$db->stock(['A-1' => [100, 1000]]);
$test = new TestApp($db);
$seen = [];
Event::listen([CheckoutCompleted::class, CheckoutFailed::class, CheckoutExpired::class, CompensationRequired::class],
    function (object $event) use (&$seen) {
        $seen[] = $event;
    });

$producer = proc_open([PHP_BINARY, __DIR__.'/lib/notify_producer.php', $db->name, TestDatabase::APP_ROLE, TestDatabase::ADMIN_ROLE],
    [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
// 4 events expected; the time limit ends the wait if some never come
$code = Artisan::call('checkout:listen', ['--max-events' => 4, '--seconds' => 30]);
$output = Artisan::output();
$locks = json_decode(stream_get_contents($pipes[1]), true);
$errors = stream_get_contents($pipes[2]);
Tap::is(proc_close($producer), 0, 'the producer ran') || Tap::diag($errors);
if (! is_array($locks)) {
    Tap::done();
}
Tap::is($code, 0, 'checkout:listen exits 0 after --max-events');

$got = array_map(fn (object $e) => class_basename($e).' '.$e->lockId, $seen);
Tap::is($got, [
    "CompensationRequired {$locks['refund']}",
    "CompensationRequired {$locks['declined']}",
    "CompensationRequired {$locks['expired']}",
    "CheckoutExpired {$locks['expired']}",
], 'one event per compensation and expiry notification, in commit order; none for the rest');
Tap::like($output, "/^skipped: completed lock {$locks['completed']}: dispatched by the call that made it\$/m",
    'a completed notification is skipped: the call dispatched CheckoutCompleted');
Tap::like($output, "/^skipped: failed lock {$locks['failed']}: dispatched by the call that made it\$/m",
    'a failed notification too');

$compensations = array_values(array_filter($seen, fn ($e) => $e instanceof CompensationRequired));
$rows = $db->super->query("SELECT compensation_id, lock_id, kind, reference, amount FROM checkout.compensations
    WHERE resolved_at IS NULL ORDER BY compensation_id")->fetchAll();
Tap::is(array_map(fn ($e) => [$e->compensationId, $e->lockId, $e->kind, $e->reference, $e->amount], $compensations),
    array_map(fn ($r) => [(int) $r['compensation_id'], (int) $r['lock_id'], $r['kind'], $r['reference'], (int) $r['amount']], $rows),
    'CompensationRequired carries the unresolved rows of checkout.compensations');
Tap::is(array_map(fn ($e) => [$e->kind, $e->reference, $e->isRefund()], $compensations),
    [['refund_required', 'cap-r', true], ['void_required', 'auth-d', false], ['void_required', 'auth-e', false]],
    'a refund of the capture, voids of the authorisations');

Tap::like($output, '/listening on "checkout_events"/', 'the command says what it listens on');
Tap::like($output, "/^CheckoutExpired lock {$locks['expired']}\$/m", 'a line per event');
Tap::like($output, '/skipped: not a checkout notification/', 'junk is skipped, and said so');
Tap::like($output, "/skipped: no unresolved refund_required compensation for lock {$locks['refund']} with id 999999/",
    'a NOTIFY naming an unknown compensation is skipped');
Tap::like($output, "/skipped: no unresolved void_required compensation for lock {$locks['refund']}/",
    'a NOTIFY naming a compensation of another kind is skipped');
Tap::like($output, "/skipped: no unresolved void_required compensation for lock {$locks['resolved']}/",
    'a compensation resolved before its NOTIFY is read is skipped');

// a 0.1.0 server's payload names no compensation_id: the lock's unresolved ones of
// that kind, each once per listener
$db->value("INSERT INTO checkout.compensations (lock_id, kind, reference, amount) VALUES (?, 'void_required', 'auth-d2', 5) RETURNING 1",
    [$locks['declined']]);
$dispatcher = new NotificationDispatcher(DB::connection('listener'), $test->app['events']);
$payload = json_encode(['event' => 'void_required', 'lock_id' => $locks['declined'], 'cart_id' => 'declined', 'reference' => 'forged']);
Tap::is(array_map(fn ($e) => $e->reference, $dispatcher->dispatch($payload)), ['auth-d', 'auth-d2'],
    'without compensation_id: every unresolved compensation of that lock and kind, from the table');
Tap::is([$dispatcher->dispatch($payload, $why), $why], [[], "no unresolved void_required compensation for lock {$locks['declined']}"],
    '... and not twice');

// the application marks a compensation done at the gateway
$first = $compensations[0]->compensationId ?? 0;
Tap::is([Checkout::resolveCompensation($first), Checkout::resolveCompensation($first)], [true, false],
    'resolveCompensation marks it once');
Tap::ok($db->value('SELECT resolved_at IS NOT NULL FROM checkout.compensations WHERE compensation_id = ?', [$first]),
    '... setting resolved_at');

Tap::done();
