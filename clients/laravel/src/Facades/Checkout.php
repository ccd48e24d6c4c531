<?php

namespace Checkout\Laravel\Facades;

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
 *
 * @see \Checkout\Laravel\Checkout
 */
class Checkout extends Facade
{
    protected static function getFacadeAccessor()
    {
        return \Checkout\Laravel\Checkout::class;
    }
}
