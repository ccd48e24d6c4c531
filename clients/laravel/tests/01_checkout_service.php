<?php

// The Checkout service and facade against the extension: a full checkout with
// typed status objects, a business failure returned (not thrown), extend,
// cancel, fail, and a checkout inside DB::transaction rolled back leaving no
// trace.

require __DIR__.'/lib/bootstrap.php';

use Checkout\Laravel\Checkout as CheckoutService;
use Checkout\Laravel\CheckoutStatus;
use Checkout\Laravel\Facades\Checkout;
use Checkout\Laravel\Phase;
use Checkout\Laravel\State;
use CheckoutTest\Tap;
use CheckoutTest\TestApp;
use CheckoutTest\TestDatabase;
use Illuminate\Support\Facades\DB;

$db = new TestDatabase('service');
$db->stock(['A-1' => [10, 1000], 'B-2' => [5, 250], 'SHORT' => [1, 100]]);
$test = new TestApp($db);
$checkout = Checkout::forToken(bin2hex(random_bytes(32)));
$cart = [
    ['line_id' => '1', 'sku' => 'A-1', 'quantity' => 2, 'unit_price' => 1000],
    ['line_id' => '2', 'sku' => 'B-2', 'quantity' => 1, 'unit_price' => 250],
];

// --- a full checkout -------------------------------------------------------
$started = $checkout->start('cart-1', $cart);
Tap::ok($started instanceof CheckoutStatus, 'start returns a CheckoutStatus');
Tap::ok($started->isActive() && $started->state === State::Active, 'the new lock is active');
Tap::is($started->phase, null, 'no phase completed yet');
Tap::is($started->cartId, 'cart-1', 'cart id');
$ttl = $started->expiresAt->getTimestamp() - (int) $db->value('SELECT extract(epoch FROM created_at)::int FROM checkout.locks WHERE lock_id = ?', [$started->lockId]);
Tap::ok(abs($ttl - 600) <= 1, "the configured ttl '10 minutes' was asked for (expires after {$ttl}s)");
Tap::is($db->value('SELECT state FROM checkout_status(?, ?)', [$started->lockId, $checkout->token()]), 'active',
    'the lock belongs to the checkout token');

$locked = $checkout->advance($started->lockId, until: Phase::PriceLock);
Tap::is($locked->phase, Phase::PriceLock, 'advance until price_lock');
Tap::is($locked->total, 2250, 'total as an int (minor units)');
Tap::is((int) $db->value("SELECT reserved FROM checkout.inventory WHERE sku = 'A-1'"), 2, 'stock reserved');

$stopped = $checkout->advance($started->lockId, until: 'stock_commit');
Tap::is($stopped->phase, Phase::PriceLock, 'until stops quietly before a payment phase without payload');

$authorised = $checkout->advance($started->lockId, ['reference' => 'auth_42', 'amount' => 2250]);
Tap::is($authorised->phase, Phase::PaymentAuthorization, 'payment authorised with an array payload');
$extended = $checkout->extend($started->lockId, new DateInterval('PT2M'));
Tap::is($extended->expiresAt->getTimestamp() - $authorised->expiresAt->getTimestamp(), 120, 'extend by a DateInterval of 2 minutes');
$done = $checkout->advance($started->lockId, ['reference' => 'cap_42', 'amount' => 2250], Phase::StockCommit);
Tap::ok($done->isCompleted() && $done->isFinished(), 'captured and completed');
Tap::is($done->orderRef, 'CO-'.$started->lockId, 'the order made by the extension');
Tap::is([(int) $db->value("SELECT on_hand FROM checkout.inventory WHERE sku = 'A-1'"),
         (int) $db->value("SELECT reserved FROM checkout.inventory WHERE sku = 'A-1'")], [8, 0], 'stock sold');
$again = $checkout->status($started->lockId);
Tap::is([$again->state, $again->phase, $again->total], [State::Completed, Phase::StockCommit, 2250], 'status reads it back');
Tap::is(json_decode(json_encode($again), true)['state'], 'completed', 'the status serialises to JSON');

// the facade resolves the same singleton as the container
Tap::ok(Checkout::getFacadeRoot() === $test->app->make(CheckoutService::class), 'facade and container share the service');

// --- a business failure is a return value ----------------------------------
$short = $checkout->start('cart-short', [['line_id' => '1', 'sku' => 'SHORT', 'quantity' => 3, 'unit_price' => 100]]);
$failed = $checkout->advance($short->lockId, until: Phase::PriceLock);
Tap::ok($failed->isFailed() && ! $failed->isActive(), 'insufficient stock: returned as a failed status, not thrown');
Tap::is([$failed->failedPhase, $failed->errorCode], [Phase::InventoryReservation, 'KC011'], 'failed phase and code');
Tap::like((string) $failed->errorMessage, '/insufficient stock for sku "SHORT"/', 'error message from the extension');

// --- cancel and fail ---------------------------------------------------------
$toCancel = $checkout->advance($checkout->start('cart-cancel', $cart)->lockId, until: Phase::PriceLock);
$cancelled = $checkout->cancel($toCancel->lockId);
Tap::ok($cancelled->isCancelled(), 'cancel');
Tap::is((int) $db->value("SELECT reserved FROM checkout.inventory WHERE sku = 'A-1'"), 0, 'cancel released the stock');
$declined = $checkout->advance($checkout->start('cart-declined', $cart)->lockId, ['reference' => 'auth_9', 'amount' => 2250], Phase::PaymentAuthorization);
$failedByApp = $checkout->fail($declined->lockId, 'card declined');
Tap::is([$failedByApp->state, $failedByApp->errorCode, $failedByApp->errorMessage], [State::Failed, 'KC014', 'card declined'], 'fail: KC014 with the reason');
Tap::is($db->value("SELECT kind || ' ' || reference || ' ' || amount FROM checkout.compensations WHERE lock_id = ?", [$declined->lockId]),
    'void_required auth_9 2250', 'fail recorded the void of the authorisation');

// --- inside DB::transaction, rolled back: no trace --------------------------
$locksBefore = (int) $db->value('SELECT count(*) FROM checkout.locks');
$snapshotsBefore = (int) $db->value('SELECT count(*) FROM checkout.price_snapshots');
try {
    DB::transaction(function () use ($checkout, $cart) {
        $status = $checkout->advance($checkout->start('cart-rolled-back', $cart)->lockId, until: Phase::PriceLock);
        Tap::is($status->phase, Phase::PriceLock, 'inside the transaction the checkout ran');
        throw new RuntimeException('the application gives up');
    });
} catch (RuntimeException $e) {
    Tap::is($e->getMessage(), 'the application gives up', 'the transaction was rolled back');
}
Tap::is((int) $db->value('SELECT count(*) FROM checkout.locks'), $locksBefore, 'no lock left');
Tap::is((int) $db->value("SELECT count(*) FROM checkout.locks WHERE cart_id = 'cart-rolled-back'"), 0, 'nothing for that cart');
Tap::is((int) $db->value('SELECT sum(reserved) FROM checkout.inventory'), 0, 'no stock held');
Tap::is((int) $db->value('SELECT count(*) FROM checkout.price_snapshots'), $snapshotsBefore, 'no price snapshot');
$fresh = $checkout->start('cart-rolled-back', $cart);
Tap::ok($fresh->isActive(), 'the cart can be checked out afterwards');

// a raised error inside a transaction leaves the transaction usable (savepoint)
DB::transaction(function () use ($checkout, $fresh) {
    try {
        $checkout->forToken('someone-else')->start('cart-rolled-back', [['line_id' => '1', 'sku' => 'A-1', 'quantity' => 1, 'unit_price' => 1000]]);
    } catch (\Checkout\Laravel\Exceptions\CheckoutInProgress) {
    }
    Tap::is($checkout->status($fresh->lockId)->lockId, $fresh->lockId, 'after a caught KC001 the transaction goes on');
});

Tap::done();
