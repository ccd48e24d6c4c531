<?php

// Each exception class from the SQLSTATE the extension really raises, with
// its context (lock id, phase, SQLSTATE), HTTP status and its one JSON body
// {message, code, phase, errors?} (errors by input on a 422; phase: the
// phase that refused the call); an until that is no phase is a 422 before
// anything runs (issue 20, items 2 and 4); client errors are not reported
// by Laravel's handler, a KC030 QueryException neither, while a 42501 one
// is (item 3); a log entry never carries the checkout token.

require __DIR__.'/lib/bootstrap.php';

use Checkout\Laravel\Exceptions\CartLocked;
use Checkout\Laravel\Exceptions\CheckoutException;
use Checkout\Laravel\Exceptions\CheckoutInProgress;
use Checkout\Laravel\Exceptions\InvalidInput;
use Checkout\Laravel\Exceptions\LockNotActive;
use Checkout\Laravel\Exceptions\LockNotFound;
use Checkout\Laravel\Exceptions\PayloadRequired;
use Checkout\Laravel\Facades\Checkout;
use Checkout\Laravel\Phase;
use CheckoutTest\Tap;
use CheckoutTest\TestApp;
use CheckoutTest\TestDatabase;
use Illuminate\Database\QueryException;
use Illuminate\Support\Facades\DB;

$db = new TestDatabase('exceptions');
$db->stock(['A-1' => [10, 1000]]);
$db->protectedCartTable();
$test = new TestApp($db);
$token = bin2hex(random_bytes(32));
$mine = Checkout::forToken($token);
$theirs = Checkout::forToken(bin2hex(random_bytes(32)));
$line = [['line_id' => '1', 'sku' => 'A-1', 'quantity' => 1, 'unit_price' => 1000]];

/** Check the class, SQLSTATE, HTTP status and rendering of what `$fn` throws. */
function expectCheckoutError(callable $fn, string $class, string $sqlState, int $http, string $what): ?CheckoutException
{
    $e = Tap::throws($fn, $class, "$what: ".basename(str_replace('\\', '/', $class)));
    if (! $e instanceof CheckoutException) {
        return null;
    }
    Tap::is([$e->sqlState, $e->httpStatus(), $e->getStatusCode()], [$sqlState, $http, $http], "$what: SQLSTATE $sqlState, HTTP $http");
    $response = $e->toJsonResponse();
    $body = json_decode($response->getContent(), true);
    Tap::is([$response->getStatusCode(), array_keys($body), $body['code'], $body['message']],
        [$http, $http === 422 ? ['message', 'code', 'phase', 'errors'] : ['message', 'code', 'phase'], $sqlState, $e->getMessage()],
        "$what: JSON {message, code, phase".($http === 422 ? ', errors' : '')."} with status $http");

    return $e;
}

$held = $mine->start('cart-1', $line);

$e = expectCheckoutError(fn () => $theirs->start('cart-1', $line), CheckoutInProgress::class, 'KC001', 409, 'another session takes the cart');
Tap::is($e?->getMessage(), 'checkout already in progress for cart "cart-1"', 'KC001: the server\'s message, without SQL');
Tap::ok($e?->getPrevious() instanceof PDOException, 'KC001: the PDOException is kept as previous');
Tap::ok($e instanceof CheckoutException && $e instanceof RuntimeException, 'KC001: a CheckoutException');

$e = expectCheckoutError(fn () => $mine->status(987654), LockNotFound::class, 'KC002', 404, 'an unknown lock');
Tap::is($e?->lockId, 987654, 'KC002: lock id as context');
expectCheckoutError(fn () => $theirs->cancel($held->lockId), LockNotFound::class, 'KC002', 404, 'another session\'s lock');

$mine->advance($held->lockId, until: Phase::PriceLock);
$e = expectCheckoutError(fn () => $mine->advance($held->lockId), PayloadRequired::class, 'KC020', 422, 'a payment phase without payload');
Tap::is([$e?->lockId, $e?->phase, $e?->errors], [$held->lockId, Phase::PaymentAuthorization, ['payload' => [$e?->getMessage()]]],
    'KC020: lock id, the phase that needs the payload, errors on payload');
$e = expectCheckoutError(fn () => $mine->advance($held->lockId, ['reference' => 'auth-1', 'amount' => 'lots'], 'stock_commit'),
    PayloadRequired::class, 'KC020', 422, 'a malformed payment payload');
Tap::is([$e?->phase, array_keys($e?->errors ?? [])], [Phase::PaymentAuthorization, ['payload.amount']],
    'KC020: the phase that refused the payload (not the call\'s until stock_commit), errors on payload.amount');
Tap::is($e?->toArray()['phase'] ?? null, 'payment_authorization', 'KC020: the body names that phase');

// item 2: an until that is no phase (taken from a request) is a 422, before anything runs
$before = $db->value('SELECT phase FROM checkout.locks WHERE lock_id = ?', [$held->lockId]);
$e = expectCheckoutError(fn () => $mine->advance($held->lockId, [], 'bogus'), InvalidInput::class, '22023', 422, 'an until that is no phase');
Tap::is([array_keys($e?->errors ?? []), $e?->phase], [['until'], null], 'until: errors on until, no phase');
Tap::like((string) $e?->getMessage(), '/^until must be one of cart_validation, .*stock_commit; got "bogus"$/', 'until: the message lists the phases');
Tap::is($db->value('SELECT phase FROM checkout.locks WHERE lock_id = ?', [$held->lockId]), $before, 'until: nothing ran');
Tap::throws(fn () => $mine->advance($held->lockId, [], ''), InvalidInput::class, 'an empty until is a 422 too');

// KC030 comes from the application's own query on a protected cart table
$e = Tap::throws(fn () => DB::insert('INSERT INTO app_cart_lines VALUES (?, ?, ?)', ['cart-1', 'A-1', 2]),
    QueryException::class, 'writing a locked cart raises (the protect_cart trigger)');
$kc030 = $e;
$locked = CheckoutException::fromQueryException($e);
Tap::ok($locked instanceof CartLocked, 'KC030 maps to CartLocked');
Tap::is([$locked?->sqlState, $locked?->httpStatus(), $locked?->toJsonResponse()->getStatusCode()], ['KC030', 423, 423], 'KC030: HTTP 423');
Tap::like((string) $locked?->getMessage(), '/^cart "cart-1" is locked by/', 'KC030: the server\'s message');
DB::insert('INSERT INTO app_cart_lines VALUES (?, ?, ?)', ['cart-free', 'A-1', 2]);
Tap::is((int) $db->value("SELECT count(*) FROM app_cart_lines WHERE cart_id = 'cart-free'"), 1, 'an unlocked cart is written');

$e = expectCheckoutError(fn () => $mine->start('cart-2', []), InvalidInput::class, '22023', 422, 'a cart without lines');
Tap::is([$e?->getMessage(), $e?->errors], ['cart has no lines', ['lines' => ['cart has no lines']]], '22023: the server\'s message, errors on lines');
$e = expectCheckoutError(fn () => $mine->start('cart-2', [$line[0], ['line_id' => '2', 'sku' => 'A-1', 'quantity' => 0, 'unit_price' => 1]]),
    InvalidInput::class, '22023', 422, 'a line with quantity 0');
Tap::is(array_keys($e?->errors ?? []), ['lines.1'], '22023: errors on the second line, lines.1');
$e = expectCheckoutError(fn () => $mine->start('cart-2', $line, ttl: 0), InvalidInput::class, '22023', 422, 'a ttl of 0 seconds');
Tap::is(array_keys($e?->errors ?? []), ['ttl'], '22023: errors on ttl');
$e = expectCheckoutError(fn () => $mine->extend($held->lockId, '-5 minutes'), InvalidInput::class, '22023', 422, 'extending by a negative interval');
Tap::is(array_keys($e?->errors ?? []), ['by'], '22023: errors on by');
$e = expectCheckoutError(fn () => $mine->start('cart-2', [['line_id' => '1', 'sku' => 'A-1', 'quantity' => PHP_INT_MAX, 'unit_price' => 2]]),
    InvalidInput::class, '22003', 422, 'a cart total beyond bigint');

// KC004 once the lock is finished
$mine->advance($held->lockId, ['reference' => 'auth-1', 'amount' => 1000], Phase::PaymentAuthorization);
$mine->advance($held->lockId, ['reference' => 'cap-1', 'amount' => 1000], Phase::StockCommit);
$e = expectCheckoutError(fn () => $mine->advance($held->lockId), LockNotActive::class, 'KC004', 409, 'advancing a completed lock');
Tap::is($e?->lockId, $held->lockId, 'KC004: lock id as context');
Tap::is($mine->advance($held->lockId, until: Phase::PaymentCapture)->state->value, 'completed',
    'with an until already reached, a finished lock is no error (a retried webhook)');

// not the extension's: stays a QueryException (no privilege for the admin API)
$e = Tap::throws(fn () => DB::select('SELECT * FROM checkout_monitor(24)'), QueryException::class,
    'checkout_app calling an admin function: a QueryException');
Tap::is([$e?->errorInfo[0] ?? null, $e ? CheckoutException::fromQueryException($e) : 'none'], ['42501', null],
    '42501 is not turned into a CheckoutException');

// item 3: Laravel's handler reports no client error: neither the package's nor KC030's QueryException
$e = Tap::throws(fn () => $mine->status(987654), LockNotFound::class, 'one more KC002 to report');
Tap::ok($e instanceof \Symfony\Component\HttpKernel\Exception\HttpExceptionInterface, 'a CheckoutException is an HttpException');
foreach ([$e, $kc030, new CheckoutInProgress('x', 'KC001'), new PayloadRequired('x', 'KC020'), new CartLocked('x', 'KC030')] as $clientError) {
    report($clientError);
}
Tap::is((string) @file_get_contents($test->logPath()), '', 'client errors (404, 409, 422, 423, KC030 from the trigger) leave no log entry');
// control: a database error that is not the extension's is reported, with its context
$denied = Tap::throws(fn () => DB::select('SELECT * FROM checkout_monitor(24)'), QueryException::class, 'a 42501 to report');
report($denied);
Tap::like((string) @file_get_contents($test->logPath()), '/\.ERROR: SQLSTATE\[42501\]/', 'control: a 42501 QueryException is reported at ERROR');
// the package's context, for an application that logs one itself: no token
$e = Tap::throws(fn () => $mine->status(987654), LockNotFound::class, 'one more KC002 to log');
\Illuminate\Support\Facades\Log::error($e->getMessage(), $e->context() + ['exception' => $e]);
$log = (string) file_get_contents($test->logPath());
Tap::like($log, '/checkout lock 987654 not found.*"sqlstate":"KC002"/', 'logged: the error and its SQLSTATE');
Tap::ok(! str_contains($log, $token), 'logged: not the checkout token');
// control: the QueryException itself would have logged it (its message has the bindings)
try {
    DB::select('SELECT * FROM checkout_status(?, ?)', [987654, $token]);
} catch (QueryException $raw) {
    report($raw);
}
Tap::ok(str_contains((string) file_get_contents($test->logPath()), $token), 'control: a reported QueryException logs the token');

Tap::done();
