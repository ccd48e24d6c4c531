<?php

// Issue 20, item 5, through real HTTP: the README's webhook route
// (routes-webhook) behind PHP's built-in server with 4 workers gets 8
// deliveries of the same capture at once, for several checkouts started and
// paid through the README's API routes.  Each delivery answers 200; exactly
// one per checkout ran payment_capture and sent the confirmation; stock is
// sold once.  The status's state and phase are the same for all of them:
// only phasesRun tells the call that did the work.

require __DIR__.'/lib/bootstrap.php';

use CheckoutTest\HttpServer;
use CheckoutTest\ShopApp;
use CheckoutTest\Tap;
use CheckoutTest\TestApp;
use CheckoutTest\TestDatabase;

$db = new TestDatabase('webhook');
$db->stock(['A-1' => [100, 1000]]);
$db->shopTables();
// the route sends the confirmation itself: no queued listener (the README's "instead")
$test = new TestApp($db, files: ShopApp::files(), providers: ['App\\Providers\\AppServiceProvider']);
$server = new HttpServer($test, workers: 4);
$json = fn (array $answer) => json_decode($answer[2], true);

$rounds = 5;
$deliveries = 8;
for ($round = 1; $round <= $rounds; $round++) {
    $cart = "cart-$round";
    $db->cart($cart, [['1', 'A-1', 2, 1000]]);
    $started = $json($server->request('POST', "/api/carts/$cart/checkout"));
    $headers = ['X-Checkout-Token' => $started['checkout_token'] ?? ''];
    $server->request('POST', "/api/checkouts/{$started['lock_id']}/advance", ['until' => 'price_lock'], $headers);
    $paid = $server->request('POST', "/api/checkouts/{$started['lock_id']}/payments", ['reference' => "auth-$round", 'amount' => 2000], $headers);
    if (! Tap::is([$paid[0], $json($paid)['phase'] ?? null], [200, 'order_creation'], "round $round: authorised through the README's API")) {
        Tap::diag($paid[2]);
    }

    $webhook = ['POST', '/api/webhooks/payments', ['authorization' => "auth-$round", 'capture' => "cap-$round", 'amount' => 2000], []];
    $answers = $server->concurrently(array_fill(0, $deliveries, $webhook));
    Tap::is(array_count_values(array_map(fn ($a) => $a[0], $answers)), [200 => $deliveries], "round $round: $deliveries deliveries at once, each 200");
    $duplicates = array_count_values(array_map(fn ($a) => json_encode($json($a)['duplicate'] ?? null), $answers));
    Tap::is([$duplicates['false'] ?? 0, $duplicates['true'] ?? 0], [1, $deliveries - 1], "round $round: one did the capture, the others were duplicates");
    Tap::is((int) $db->value('SELECT count(*) FROM confirmations WHERE lock_id = ?', [$started['lock_id']]), 1,
        "round $round: one confirmation sent");
    Tap::is($db->value('SELECT state FROM checkout.locks WHERE lock_id = ?', [$started['lock_id']]), 'completed', "round $round: completed");
}
Tap::is([(int) $db->value("SELECT on_hand FROM checkout.inventory WHERE sku = 'A-1'"), (int) $db->value("SELECT reserved FROM checkout.inventory WHERE sku = 'A-1'")],
    [100 - 2 * $rounds, 0], 'stock sold once per checkout');
$workers = (int) $db->value("SELECT count(DISTINCT sent_by) FROM confirmations");
Tap::note("confirmations sent by $workers distinct worker processes");
Tap::is($server->request('POST', '/api/webhooks/payments', ['authorization' => 'not-ours', 'capture' => 'x', 'amount' => 1])[0], 204,
    'a delivery for a payment that is not ours: 204, no retry');

// what tells them apart: the state and phase of a retry equal the first call's
$row = $db->super->query("SELECT lock_id, checkout_token FROM payments WHERE reference = 'auth-1'")->fetch();
$retry = \Checkout\Laravel\Facades\Checkout::forToken($row['checkout_token'])
    ->advance((int) $row['lock_id'], ['reference' => 'cap-1', 'amount' => 2000], 'payment_capture');
Tap::is([$retry->state->value, $retry->phase->value, $retry->phasesRun, $retry->isDuplicate()], ['completed', 'stock_commit', [], true],
    'a retry reads completed at stock_commit, as the capturing call did; only phasesRun (empty) and isDuplicate() differ');

Tap::done();
