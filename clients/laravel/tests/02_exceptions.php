<?php

// Each exception class from the SQLSTATE the extension really raises, with
// its context (lock id, phase, SQLSTATE), HTTP status and JSON rendering;
// errors that are not the extension's stay QueryExceptions; a reported
// exception's log entry does not carry the checkout token.

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
    Tap::is([$e->sqlState, $e->httpStatus()], [$sqlState, $http], "$what: SQLSTATE $sqlState, HTTP $http");
    $response = $e->render(null);
    $body = json_decode($response->getContent(), true);
    Tap::is([$response->getStatusCode(), $body['code'], $body['message']], [$http, $sqlState, $e->getMessage()],
        "$what: renders as JSON with status $http");

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
Tap::is([$e?->lockId, $e?->phase], [$held->lockId, Phase::PaymentAuthorization], 'KC020: lock id and the phase that needs the payload');
expectCheckoutError(fn () => $mine->advance($held->lockId, ['reference' => 'auth-1', 'amount' => 'lots']),
    PayloadRequired::class, 'KC020', 422, 'a malformed payment payload');

// KC030 comes from the application's own query on a protected cart table
$e = Tap::throws(fn () => DB::insert('INSERT INTO app_cart_lines VALUES (?, ?, ?)', ['cart-1', 'A-1', 2]),
    QueryException::class, 'writing a locked cart raises (the protect_cart trigger)');
$locked = CheckoutException::fromQueryException($e);
Tap::ok($locked instanceof CartLocked, 'KC030 maps to CartLocked');
Tap::is([$locked?->sqlState, $locked?->httpStatus(), $locked?->render(null)->getStatusCode()], ['KC030', 423, 423], 'KC030: HTTP 423');
Tap::like((string) $locked?->getMessage(), '/^cart "cart-1" is locked by/', 'KC030: the server\'s message');
DB::insert('INSERT INTO app_cart_lines VALUES (?, ?, ?)', ['cart-free', 'A-1', 2]);
Tap::is((int) $db->value("SELECT count(*) FROM app_cart_lines WHERE cart_id = 'cart-free'"), 1, 'an unlocked cart is written');

$e = expectCheckoutError(fn () => $mine->start('cart-2', []), InvalidInput::class, '22023', 422, 'a cart without lines');
Tap::is($e?->getMessage(), 'cart has no lines', '22023: the server\'s message');
expectCheckoutError(fn () => $mine->start('cart-2', [['line_id' => '1', 'sku' => 'A-1', 'quantity' => 0, 'unit_price' => 1]]),
    InvalidInput::class, '22023', 422, 'a line with quantity 0');
expectCheckoutError(fn () => $mine->start('cart-2', $line, ttl: 0), InvalidInput::class, '22023', 422, 'a ttl of 0 seconds');
expectCheckoutError(fn () => $mine->extend($held->lockId, '-5 minutes'), InvalidInput::class, '22023', 422, 'extending by a negative interval');
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

// Laravel's report(): the log has the message and context, not the token
$e = Tap::throws(fn () => $mine->status(987654), LockNotFound::class, 'one more KC002 to report');
report($e);
$log = (string) @file_get_contents($test->logPath());
Tap::like($log, '/checkout lock 987654 not found.*"sqlstate":"KC002"/', 'the report names the error and its SQLSTATE');
Tap::ok(! str_contains($log, $token), 'the report does not carry the checkout token');
// control: the QueryException itself would have logged it (its message has the bindings)
try {
    DB::select('SELECT * FROM checkout_status(?, ?)', [987654, $token]);
} catch (QueryException $raw) {
    report($raw);
}
Tap::ok(str_contains((string) file_get_contents($test->logPath()), $token), 'control: a reported QueryException logs the token');

Tap::done();
