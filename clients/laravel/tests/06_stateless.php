<?php

// Issue 20, item 1: where no session was started - routes/api.php through
// PHP's built-in server, an Artisan command - a call without forToken throws
// MissingCheckoutToken before anything is written: no lock is stranded (the
// old behaviour: a throwaway token, 201, then KC002 for the same client and
// stock held for the lock's whole lifetime).  The README's stateless routes
// (routes-api) work with the token the client carries.

require __DIR__.'/lib/bootstrap.php';

use Checkout\Laravel\Exceptions\MissingCheckoutToken;
use Checkout\Laravel\Facades\Checkout;
use CheckoutTest\HttpServer;
use CheckoutTest\Readme;
use CheckoutTest\Tap;
use CheckoutTest\TestApp;
use CheckoutTest\TestDatabase;
use Illuminate\Support\Facades\Artisan;

$db = new TestDatabase('stateless');
$db->stock(['A-1' => [10, 1000]]);
$db->shopTables();
$db->cart('cart-1', [['1', 'A-1', 2, 1000]]);
$test = new TestApp($db);
// the README's routes, and routes that forget forToken (what a developer writes first)
$test->writeFile('routes/api.php', Readme::snippet('routes-api').<<<'PHP'

Route::post('/naive/carts/{cart}/checkout', fn (string $cart) => response()->json(
    Checkout::start($cart, [['line_id' => '1', 'sku' => 'A-1', 'quantity' => 1, 'unit_price' => 1000]]), 201));
Route::get('/naive/token', fn () => ['token' => Checkout::token()]);
Route::post('/naive/checkouts/{lock}/advance', fn (int $lock) => Checkout::advance($lock, [], 'price_lock'));
PHP);
$server = new HttpServer($test, workers: 2);
$locks = fn () => (int) $db->value('SELECT count(*) FROM checkout.locks');

// --- without forToken: a clear exception, nothing written ---------------------
[$status, , $body] = $server->request('POST', '/api/naive/carts/cart-2/checkout');
Tap::is($status, 500, 'api route, start without forToken: 500 (a programming error), not 201');
Tap::is($locks(), 0, 'no lock was written');
Tap::is((int) $db->value("SELECT sum(reserved) FROM checkout.inventory"), 0, 'no stock held');
Tap::is($server->request('GET', '/api/naive/token')[0], 500, 'api route, Checkout::token(): 500 too');
$log = (string) @file_get_contents($test->logPath());
Tap::like($log, '/ERROR: Checkout has no checkout token here: this request \(POST \/api\/naive\/carts\/cart-2\/checkout\) has no started session\. Use Checkout::forToken\(\$token\)/',
    'the log says why and what to use instead');
Tap::like($log, '/Checkout\\\\\\\\Laravel\\\\\\\\Exceptions\\\\\\\\MissingCheckoutToken/', '... as a MissingCheckoutToken');

// --- the README's stateless routes -------------------------------------------
[$status, , $body] = $server->request('POST', '/api/carts/cart-1/checkout');
$started = json_decode($body, true);
Tap::is([$status, $started['state'] ?? null, strlen($started['checkout_token'] ?? '')], [201, 'active', 64],
    'README api: start answers 201 with the checkout token');
[$status, , $body] = $server->request('POST', "/api/checkouts/{$started['lock_id']}/advance", ['until' => 'price_lock'],
    ['X-Checkout-Token' => $started['checkout_token']]);
Tap::is([$status, json_decode($body, true)['phase'] ?? null, json_decode($body, true)['total'] ?? null], [200, 'price_lock', 2000],
    'README api: the same client advances its lock (no KC002)');
[$status, , $body] = $server->request('POST', "/api/checkouts/{$started['lock_id']}/advance", ['until' => 'price_lock'],
    ['X-Checkout-Token' => str_repeat('0', 64)]);
Tap::is([$status, json_decode($body, true)['code'] ?? null], [404, 'KC002'], 'README api: another token: 404 KC002');
[$status, , $body] = $server->request('POST', "/api/checkouts/{$started['lock_id']}/advance", ['until' => 'nonsense'],
    ['X-Checkout-Token' => $started['checkout_token']]);
Tap::is([$status, array_keys(json_decode($body, true)['errors'] ?? [])], [422, ['until']], 'README api: an until that is no phase: 422');
[$status, , $body] = $server->request('POST', "/api/checkouts/{$started['lock_id']}/payments", ['reference' => 'auth-1', 'amount' => 2000],
    ['X-Checkout-Token' => $started['checkout_token']]);
Tap::is([$status, json_decode($body, true)['phase'] ?? null], [200, 'order_creation'], 'README api: payment authorised, order created');
Tap::is($db->value('SELECT lock_id || \' \' || checkout_token FROM payments WHERE reference = ?', ['auth-1']),
    $started['lock_id'].' '.$started['checkout_token'], 'README api: the payment row keeps the lock and token for the webhook');
Tap::is($server->request('POST', '/api/naive/checkouts/'.$started['lock_id'].'/advance')[0], 500,
    'api route, advance without forToken: 500, before the call');
Tap::is($db->value('SELECT phase FROM checkout.locks WHERE lock_id = ?', [$started['lock_id']]), 'order_creation', '... which changed nothing');

// --- the console: an Artisan command and Checkout::token() -------------------
Artisan::command('shop:checkout {cart}', function (string $cart) {
    Checkout::start($cart, [['line_id' => '1', 'sku' => 'A-1', 'quantity' => 1, 'unit_price' => 1000]]);
});
$before = $locks();
$e = Tap::throws(fn () => Artisan::call('shop:checkout', ['cart' => 'cart-console']), MissingCheckoutToken::class,
    'an Artisan command starting a checkout without forToken: MissingCheckoutToken');
Tap::like((string) $e?->getMessage(), '/the console \(an Artisan command, a queued job, a scheduled task\) has no started session/',
    'it names the console');
Tap::is($locks(), $before, 'nothing written from the console');
Tap::throws(fn () => Checkout::token(), MissingCheckoutToken::class, 'Checkout::token() in the console: MissingCheckoutToken');
$token = bin2hex(random_bytes(32));
Tap::is(Checkout::forToken($token)->start('cart-console', [['line_id' => '1', 'sku' => 'A-1', 'quantity' => 1, 'unit_price' => 1000]])->state->value,
    'active', 'with forToken the console starts it');
Tap::is(Checkout::forToken($token)->token(), $token, 'forToken(...)->token() is that token');

Tap::done();
