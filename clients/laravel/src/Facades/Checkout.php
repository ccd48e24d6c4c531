<?php

namespace Checkout\Laravel\Facades;

use Checkout\Laravel\Testing\CheckoutFake;
use Illuminate\Support\Facades\Facade;

/**
 * @method static \Checkout\Laravel\CheckoutStatus start(string $cartId, array $lines, int|string|\DateInterval|null $ttl = null, ?string $idempotencyKey = null)
 * @method static \Checkout\Laravel\CheckoutStatus advance(int $lockId, array $payload = [], \Checkout\Laravel\Phase|string|null $until = null)
 * @method static \Checkout\Laravel\CheckoutStatus status(int $lockId)
 * @method static \Checkout\Laravel\CheckoutStatus extend(int $lockId, int|string|\DateInterval $by)
 * @method static \Checkout\Laravel\CheckoutStatus cancel(int $lockId)
 * @method static \Checkout\Laravel\CheckoutStatus fail(int $lockId, string $reason)
 * @method static \Checkout\Laravel\Checkout forToken(string $token)
 * @method static string token()
 * @method static int|null lockIdForCart(string $cartId)
 * @method static bool resolveCompensation(int $compensationId)
 * @method static void assertStarted(string $cartId, ?callable $callback = null)
 * @method static void assertNotStarted(string $cartId)
 * @method static void assertNothingStarted()
 * @method static void assertAdvanced(int $lockId, ?\Checkout\Laravel\Phase $phase = null)
 * @method static void assertNotAdvanced(int $lockId)
 * @method static void assertCompleted(int $lockId)
 * @method static void assertCancelled(int $lockId)
 * @method static void assertFailed(int $lockId, ?string $code = null)
 * @method static void assertExtended(int $lockId)
 *
 * @see \Checkout\Laravel\Checkout
 * @see \Checkout\Laravel\Testing\CheckoutFake
 */
class Checkout extends Facade
{
    /** Replace the service with an in-memory fake that records the calls (the assert* methods). */
    public static function fake(): CheckoutFake
    {
        $app = static::getFacadeApplication();
        static::swap($fake = new CheckoutFake($app['db'], $app, $app['config']['checkout']));

        return $fake;
    }

    protected static function getFacadeAccessor()
    {
        return \Checkout\Laravel\Checkout::class;
    }
}
