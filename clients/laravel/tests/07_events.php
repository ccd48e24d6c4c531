<?php

// Issue 20, items 5 and 6: each service call says what it did (created,
// phasesRun, ended) and dispatches it as an event once its transaction
// commits - never after a rollback, never for a retry; ShouldQueue listeners
// work with the sync and the database queue drivers (the README's
// SendOrderConfirmation, registered by the README's $listen); the README's
// GiveMoneyBack gets the unresolved compensations from
// checkout:dispatch-compensations, each once.

require __DIR__.'/lib/bootstrap.php';

use Checkout\Laravel\Events\CheckoutAdvanced;
use Checkout\Laravel\Events\CheckoutCancelled;
use Checkout\Laravel\Events\CheckoutCompleted;
use Checkout\Laravel\Events\CheckoutEvent;
use Checkout\Laravel\Events\CheckoutFailed;
use Checkout\Laravel\Events\CheckoutStarted;
use Checkout\Laravel\Facades\Checkout;
use Checkout\Laravel\Phase;
use CheckoutTest\ShopApp;
use CheckoutTest\Tap;
use CheckoutTest\TestApp;
use CheckoutTest\TestDatabase;
use Illuminate\Support\Facades\Artisan;
use Illuminate\Support\Facades\DB;
use Illuminate\Support\Facades\Event;

$db = new TestDatabase('events');
$db->stock(['A-1' => [100, 1000], 'SHORT' => [1, 1000]]);
$db->shopTables(protected: false);
$db->super->exec('CREATE TABLE jobs (id bigserial PRIMARY KEY, queue text NOT NULL, payload text NOT NULL, attempts smallint NOT NULL,
    reserved_at integer, available_at integer NOT NULL, created_at integer NOT NULL)');
$test = new TestApp($db, files: ShopApp::files(), providers: ShopApp::providers());
$checkout = Checkout::forToken(bin2hex(random_bytes(32)));
$line = fn (string $sku = 'A-1', int $quantity = 1) => [['line_id' => '1', 'sku' => $sku, 'quantity' => $quantity, 'unit_price' => 1000]];
$pay = fn (string $reference) => ['reference' => $reference, 'amount' => 1000];

// every call event, and whether its lock was committed when it came (seen from another connection)
$seen = [];
Event::listen([CheckoutStarted::class, CheckoutAdvanced::class, CheckoutCompleted::class, CheckoutFailed::class, CheckoutCancelled::class], function (CheckoutEvent $event) use (&$seen, $db) {
    $committed = (bool) $db->value('SELECT count(*) FROM checkout.locks WHERE lock_id = ?', [$event->lockId]);
    $seen[] = class_basename($event).' '.$event->lockId
        .($event instanceof CheckoutAdvanced ? ' '.implode(',', array_map(fn ($p) => $p->value, $event->status->phasesRun)) : '')
        .($committed ? '' : ' UNCOMMITTED');
});
$take = function () use (&$seen) {
    [$got, $seen] = [$seen, []];

    return $got;
};

// --- what each call did ------------------------------------------------------
$started = $checkout->start('cart-1', $line());
Tap::is([$started->created, $started->phasesRun, $started->ended], [true, [], false], 'start: created, no phase run, not ended');
Tap::is($take(), ["CheckoutStarted {$started->lockId}"], 'start dispatched CheckoutStarted');
$again = $checkout->start('cart-1', $line());
Tap::is([$again->lockId, $again->created, $again->isDuplicate()], [$started->lockId, false, true], 'start again: the same lock, not created, a duplicate');
Tap::is($take(), [], '... and no event');

$locked = $checkout->advance($started->lockId, until: Phase::PriceLock);
Tap::is($locked->phasesRun, [Phase::CartValidation, Phase::InventoryReservation, Phase::PriceLock], 'advance: the three phases it ran, in order');
Tap::is($take(), ["CheckoutAdvanced {$started->lockId} cart_validation,inventory_reservation,price_lock"], 'CheckoutAdvanced with them');
$retry = $checkout->advance($started->lockId, until: Phase::PriceLock);
Tap::is([$retry->phase, $retry->phasesRun, $retry->isDuplicate(), $take()], [Phase::PriceLock, [], true, []], 'advance retried: nothing run, a duplicate, no event');
Tap::is([$locked->nextPhase(), $locked->needsPayment()], [Phase::PaymentAuthorization, true], 'next: payment_authorization, which needs a payment');

$checkout->advance($started->lockId, $pay('auth-1'), Phase::OrderCreation);
$take();
$captured = $checkout->advance($started->lockId, $pay('cap-1'), Phase::StockCommit);
Tap::is([$captured->ran(Phase::PaymentCapture), $captured->ran(Phase::StockCommit), $captured->ended, $captured->isCompleted()],
    [true, true, true, true], 'the capture: ran payment_capture and stock_commit, ended the lock, completed');
Tap::is($take(), ["CheckoutAdvanced {$started->lockId} payment_capture,stock_commit", "CheckoutCompleted {$started->lockId}"],
    'CheckoutAdvanced, then CheckoutCompleted');
$duplicate = $checkout->advance($started->lockId, $pay('cap-1'), Phase::PaymentCapture);
Tap::is([$duplicate->isCompleted(), $duplicate->ran(Phase::PaymentCapture), $duplicate->ended, $duplicate->isDuplicate(), $take()],
    [true, false, false, true, []], 'the capture again (a retried webhook): completed, but ran nothing, ended nothing, no event');
Tap::is([$checkout->status($started->lockId)->isDuplicate(), $take()], [true, []], 'a status read did nothing');

$cancelled = $checkout->cancel($checkout->start('cart-2', $line())->lockId);
Tap::is([$cancelled->ended, $cancelled->phasesRun, array_slice($take(), 1)], [true, [], ["CheckoutCancelled {$cancelled->lockId}"]],
    'cancel: ended, no phase run, CheckoutCancelled');
$failed = $checkout->fail($checkout->start('cart-3', $line())->lockId, 'card declined');
Tap::is([$failed->ended, $failed->isDuplicate(), array_slice($take(), 1)], [true, false, ["CheckoutFailed {$failed->lockId}"]],
    'fail: ended (no duplicate), CheckoutFailed');
$short = $checkout->advance($checkout->start('cart-4', $line('SHORT', 5))->lockId, until: Phase::PriceLock);
$events = array_slice($take(), 1);
Tap::is([$short->isFailed(), $short->ended, end($events)], [true, true, "CheckoutFailed {$short->lockId}"],
    'a business failure in advance: ended, CheckoutFailed last');

// --- after commit, never after a rollback ---------------------------------------
$inside = null;
DB::transaction(function () use ($checkout, $line, &$inside, &$seen) {
    $checkout->advance($checkout->start('cart-5', $line())->lockId, until: Phase::PriceLock);
    $inside = count($seen);
});
Tap::is($inside, 0, 'inside DB::transaction nothing was dispatched');
$events = $take();
Tap::is([count($events), preg_grep('/UNCOMMITTED/', $events)], [2, []], 'after the commit: both events, their lock committed');
try {
    DB::transaction(function () use ($checkout, $line) {
        $checkout->advance($checkout->start('cart-6', $line())->lockId, until: Phase::PriceLock);
        throw new RuntimeException('rolled back');
    });
} catch (RuntimeException) {
}
Tap::is($take(), [], 'a rolled-back transaction dispatches nothing');

// --- queued listeners: the README's SendOrderConfirmation ----------------------
$confirmations = fn (int $lockId) => (int) $db->value('SELECT count(*) FROM confirmations WHERE lock_id = ?', [$lockId]);
$paid = function (string $cart) use ($checkout, $line, $pay) {
    $id = $checkout->start($cart, $line())->lockId;
    $checkout->advance($id, $pay("auth-$cart"), Phase::OrderCreation);

    return $id;
};
$id = $paid('cart-sync');
$checkout->advance($id, $pay("cap-$id"), Phase::PaymentCapture);
$checkout->advance($id, $pay("cap-$id"), Phase::PaymentCapture);
Tap::is($confirmations($id), 1, 'sync queue: the ShouldQueue listener ran once for a capture sent twice');

$test->app['config']->set('queue.default', 'database');
$id = $paid('cart-db');
DB::transaction(function () use ($checkout, $id, $pay, $db, &$inside) {
    $checkout->advance($id, $pay("cap-$id"), Phase::PaymentCapture);
    $inside = (int) $db->value('SELECT count(*) FROM jobs');
});
$checkout->advance($id, $pay("cap-$id"), Phase::PaymentCapture);
Tap::is([$inside, (int) $db->value('SELECT count(*) FROM jobs'), $confirmations($id)], [0, 1, 0],
    'database queue: one job, queued after the commit, not run yet');
Tap::like((string) $db->value('SELECT payload FROM jobs'), '/CallQueuedListener.*SendOrderConfirmation/', '... the README listener\'s');
Artisan::call('queue:work', ['connection' => 'database', '--once' => true, '--sleep' => 0]);
Tap::is([(int) $db->value('SELECT count(*) FROM jobs'), $confirmations($id)], [0, 1], 'queue:work ran it: the confirmation sent once');
$test->app['config']->set('queue.default', 'sync');

// --- compensations the listener missed: checkout:dispatch-compensations ------------
$declined = $checkout->fail($paid('cart-declined'), 'card declined');
$refunded = $paid('cart-refunded');
$checkout->advance($refunded, $pay("cap-$refunded"), Phase::PaymentCapture);
$checkout->cancel($refunded);
Artisan::call('checkout:dispatch-compensations', ['--older-than' => 3600]);
Tap::is(trim(Artisan::output()), 'Dispatched 0 unresolved compensations.', '--older-than=3600: none that old');
Artisan::call('checkout:dispatch-compensations', ['--older-than' => 0]);
$out = Artisan::output();
Tap::like($out, "/^CompensationRequired lock {$declined->lockId} compensation \\d+ \\(void_required\\)$/m", 'the void of the declined checkout');
Tap::like($out, "/^CompensationRequired lock $refunded compensation \\d+ \\(refund_required\\)$/m", 'the refund of the cancelled one');
Tap::is($db->super->query('SELECT call FROM gateway_calls ORDER BY call')->fetchAll(PDO::FETCH_COLUMN),
    ["refund cap-$refunded 1000", 'void auth-cart-declined'], 'the README\'s GiveMoneyBack refunded and voided at the gateway');
Tap::is((int) $db->value('SELECT count(*) FROM checkout.compensations WHERE resolved_at IS NULL'), 0, '... and resolved both');
Artisan::call('checkout:dispatch-compensations', ['--older-than' => 0]);
Tap::is([trim(Artisan::output()), (int) $db->value('SELECT count(*) FROM gateway_calls')], ['Dispatched 0 unresolved compensations.', 2],
    'run again: nothing left, nothing done twice');

Tap::done();
