<?php

// Through Laravel's HTTP kernel with real sessions: the checkout token
// survives session()->regenerate() (a lock started before login is advanced
// after it), the cart middleware answers 423 while this session's checkout
// holds the cart, KC030 from the cart table's trigger renders as 423, a
// CheckoutException left uncaught renders with its status - the one body
// {message, code, phase} as JSON when the request expects JSON, Laravel's
// error page otherwise - and none of them is logged (issue 20, items 3 and
// 4), and a start rolled back with its transaction leaves no lock in the
// session either.

require __DIR__.'/lib/bootstrap.php';

use Checkout\Laravel\Checkout as CheckoutService;
use Checkout\Laravel\CheckoutToken;
use Checkout\Laravel\Exceptions\CheckoutInProgress;
use Checkout\Laravel\Facades\Checkout;
use CheckoutTest\Tap;
use CheckoutTest\TestApp;
use CheckoutTest\TestDatabase;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\DB;
use Illuminate\Support\Facades\Route;

$db = new TestDatabase('http');
$db->stock(['A-1' => [10, 1000]]);
$db->protectedCartTable();
$test = new TestApp($db);
$lines = [['line_id' => '1', 'sku' => 'A-1', 'quantity' => 1, 'unit_price' => 1000]];

Route::middleware('web')->group(function () use ($lines) {
    Route::post('/checkout/{cart}/start', function (string $cart) use ($lines) {
        try {
            return response()->json(Checkout::start($cart, $lines), 201);
        } catch (CheckoutInProgress $e) {
            return response()->json(['message' => 'someone else is checking out this cart'], $e->httpStatus());
        }
    });
    Route::post('/checkout/{cart}/start-then-abort', function (string $cart) use ($lines) {
        try {
            DB::transaction(function () use ($cart, $lines) {
                Checkout::start($cart, $lines);
                throw new RuntimeException('abort');
            });
        } catch (RuntimeException) {
        }

        return response()->json(['aborted' => true]);
    });
    Route::post('/checkout/{lock}/advance', fn (Request $request, int $lock) => response()->json(
        Checkout::advance($lock, $request->input('payload', []), $request->input('until'))));
    Route::post('/checkout/{lock}/cancel', fn (int $lock) => response()->json(Checkout::cancel($lock)));
    Route::get('/session', fn (Request $request) => response()->json([
        'id' => $request->session()->getId(), 'token' => $request->session()->get(CheckoutToken::SESSION_KEY),
        'locks' => $request->session()->get(CheckoutService::SESSION_LOCKS, [])]));
    Route::post('/login', function (Request $request) {
        $request->session()->regenerate();

        return response()->json(['logged_in' => true]);
    });
    Route::post('/logout', function (Request $request) {
        $request->session()->invalidate();

        return response()->json(['logged_out' => true]);
    });
    Route::post('/cart/{cart}/items', function (string $cart) {
        DB::insert('INSERT INTO app_cart_lines VALUES (?, ?, ?)', [$cart, 'A-1', 1]);

        return response()->json(['added' => true], 201);
    })->middleware('checkout.unlocked:cart');
});

$json = fn ($response) => json_decode($response->getContent(), true);
$sql = function (string $query, array $params) use ($db): string {
    try {
        return (string) $db->value($query, $params);
    } catch (PDOException $e) {
        return $e->errorInfo[0];
    }
};

// --- the checkout token survives regenerate() -------------------------------
$started = $test->request('POST', '/checkout/cart-s/start');
Tap::is($started->getStatusCode(), 201, 'a checkout starts in a web request');
$lockId = $json($started)["lock_id"] ?? null;
$before = $json($test->request('GET', '/session'));
Tap::ok(is_string($before['token']) && strlen($before['token']) === 64, 'a 64-hex checkout token is kept in the session data');
Tap::ok($before['token'] !== $before['id'], 'the token is not Laravel\'s session id');

$test->request('POST', '/login');
$after = $json($test->request('GET', '/session'));
Tap::ok($after['id'] !== $before['id'], 'login regenerated Laravel\'s session id');
Tap::is($after['token'], $before['token'], 'the checkout token is still the same');
$advanced = $test->request('POST', "/checkout/$lockId/advance", ['until' => 'price_lock']);
Tap::is([$advanced->getStatusCode(), $json($advanced)['phase'] ?? null], [200, 'price_lock'],
    'the lock started before login is advanced after it');
Tap::is([$sql('SELECT state FROM checkout_status(?, ?)', [$lockId, $before['id']]),
         $sql('SELECT state FROM checkout_status(?, ?)', [$lockId, $after['id']]),
         $sql('SELECT state FROM checkout_status(?, ?)', [$lockId, $after['token']])],
    ['KC002', 'KC002', 'active'], 'the extension knows the lock by the token, by neither session id');

// control: a lock keyed by Laravel's session id is lost by the next regenerate()
$db->value("SELECT lock_id FROM checkout_start('cart-by-session-id', ?, ?::jsonb)", [$after['id'], json_encode($lines)]);
$test->request('POST', '/login');
$third = $json($test->request('GET', '/session'));
Tap::is($sql("SELECT state FROM checkout_status((SELECT lock_id FROM checkout.locks WHERE cart_id = 'cart-by-session-id'), ?)", [$third['id']]),
    'KC002', 'control: keyed by the session id, the lock is unreachable after regenerate()');

// --- the middleware ----------------------------------------------------------
$refused = $test->request('POST', '/cart/cart-s/items');
Tap::is($refused->getStatusCode(), 423, 'editing the cart while our checkout holds it: 423');
Tap::is([array_keys($json($refused)), $json($refused)['code'] ?? null, $json($refused)['phase']],
    [['message', 'code', 'phase'], 'KC030', null], 'the middleware\'s 423 has the one body {message, code KC030, phase}');
Tap::like($json($refused)['message'] ?? '', "/^cart \"cart-s\" is locked by checkout lock $lockId until /", '423 names the cart, lock and deadline');
$retryAfter = (int) $refused->headers->get('Retry-After');
Tap::ok($retryAfter > 500 && $retryAfter <= 600, "Retry-After: the seconds until the lock's deadline ($retryAfter)");
Tap::is((int) $db->value("SELECT count(*) FROM app_cart_lines WHERE cart_id = 'cart-s'"), 0, 'the controller did not run');
Tap::is($test->request('POST', '/cart/cart-free/items')->getStatusCode(), 201, 'another cart is editable');

$taken = $test->request('POST', '/checkout/cart-s/start');
Tap::is($json($taken)['lock_id'] ?? null, $lockId, 'starting again from the same session returns the same lock');

$firstBrowser = $test->cookies();
$test->newBrowser();
$other = $test->request('POST', '/checkout/cart-s/start');
Tap::is([$other->getStatusCode(), $json($other)['message'] ?? null], [409, 'someone else is checking out this cart'],
    'another browser: the controller catches CheckoutInProgress (409)');
$viaTrigger = $test->request('POST', '/cart/cart-s/items');
Tap::is([$viaTrigger->getStatusCode(), $json($viaTrigger)], [423, ['message' => $json($viaTrigger)['message'] ?? '', 'code' => 'KC030', 'phase' => null]],
    'another browser passes the middleware; the cart trigger\'s KC030 renders as 423, the same body');
$uncaught = $test->request('POST', "/checkout/$lockId/advance", ['until' => 'price_lock']);
Tap::is([$uncaught->getStatusCode(), $json($uncaught)], [404, ['message' => "checkout lock $lockId not found", 'code' => 'KC002', 'phase' => null]],
    'an uncaught LockNotFound renders as 404 JSON {message, code, phase}');
$html = ['HTTP_ACCEPT' => 'text/html,application/xhtml+xml'];
$page = $test->request('POST', "/checkout/$lockId/advance", ['until' => 'price_lock'], $html);
Tap::is([$page->getStatusCode(), str_starts_with((string) $page->headers->get('Content-Type'), 'text/html'), json_decode($page->getContent()) === null],
    [404, true, true], 'a browser (not expecting JSON) gets Laravel\'s HTML error page, with the status');
$page = $test->request('POST', '/cart/cart-s/items', [], $html);
Tap::is([$page->getStatusCode(), str_starts_with((string) $page->headers->get('Content-Type'), 'text/html')], [423, true],
    'KC030 from the trigger: an HTML 423 for a browser');
$bogus = $test->request('POST', "/checkout/$lockId/advance", ['until' => 'bogus']);
Tap::is([$bogus->getStatusCode(), $json($bogus)['code'] ?? null, array_keys($json($bogus)['errors'] ?? [])], [422, '22023', ['until']],
    'an until from the request that is no phase: 422 with errors.until, not a 500');

$test->useCookies($firstBrowser);
$cancelled = $test->request('POST', "/checkout/$lockId/cancel");
Tap::is($json($cancelled)['state'] ?? null, 'cancelled', 'the first browser cancels its checkout');
Tap::is($test->request('POST', '/cart/cart-s/items')->getStatusCode(), 201, 'after cancel the cart is editable again');

// --- a start rolled back with its transaction leaves nothing in the session --
$test->request('POST', '/checkout/cart-r/start-then-abort');
Tap::is((int) $db->value("SELECT count(*) FROM checkout.locks WHERE cart_id = 'cart-r'"), 0, 'rolled back: no lock');
Tap::is($test->request('POST', '/cart/cart-r/items')->getStatusCode(), 201, 'rolled back: the middleware does not block the cart');
$locks = $json($test->request('GET', '/session'))['locks'];
Tap::ok(! array_key_exists('cart-r', $locks) && ! array_key_exists('cart-s', $locks), 'the session records neither the rolled-back nor the cancelled checkout');

// --- logout drops the token: the checkout does not outlive the login --------
$again = $json($test->request('POST', '/checkout/cart-l/start'));
$test->request('POST', '/logout');
Tap::is($test->request('POST', "/checkout/{$again['lock_id']}/advance")->getStatusCode(), 404,
    'after logout (invalidate) the old checkout is not this session\'s any more');

// item 3: the 404s, 409s, 422s and 423s above were rendered, none reported
Tap::is((string) @file_get_contents($test->logPath()), '', 'no client error reached laravel.log');

Tap::done();
