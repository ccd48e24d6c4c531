<?php

namespace Checkout\Laravel\Http\Middleware;

use Checkout\Laravel\Checkout;
use Checkout\Laravel\Exceptions\CartLocked;
use Checkout\Laravel\Exceptions\LockNotFound;
use Closure;
use Illuminate\Contracts\Routing\UrlRoutable;
use Illuminate\Http\Request;

/**
 * Answers 423 Locked (CartLocked, KC030, with Retry-After) while this
 * session's checkout holds the cart, so the cart is not edited mid-checkout.  `checkout.unlocked:cart` takes the cart
 * id from the route parameter `cart` (a model gives its route key); or set a
 * resolver with RejectWhileCartLocked::resolveCartUsing(fn (Request $r) => ...).
 *
 * It asks checkout_status about the lock this session started on the cart
 * (checkout_app may not read checkout.locks).  A lock another session holds
 * on the same cart is not seen here; the checkout.protect_cart trigger on the
 * cart table refuses that write (KC030), which renders as 423 too.
 */
class RejectWhileCartLocked
{
    private static ?Closure $resolver = null;

    public function __construct(private readonly Checkout $checkout)
    {
    }

    /** `$resolver(Request): string|int|null` - the cart id of a request; null to use the route parameter again. */
    public static function resolveCartUsing(?callable $resolver): void
    {
        self::$resolver = $resolver === null ? null : Closure::fromCallable($resolver);
    }

    public function handle(Request $request, Closure $next, string $parameter = 'cart')
    {
        $cartId = self::$resolver !== null ? (self::$resolver)($request) : $request->route($parameter);
        if ($cartId instanceof UrlRoutable) {
            $cartId = $cartId->getRouteKey();
        }
        $lockId = $cartId === null || $cartId === '' ? null : $this->checkout->lockIdForCart((string) $cartId);
        if ($lockId !== null) {
            try {
                $status = $this->checkout->status($lockId);   // forgets the lock once finished
            } catch (LockNotFound) {
                $this->checkout->forgetCart((string) $cartId);
                $status = null;
            }
            if ($status?->isActive()) {
                throw new CartLocked(
                    sprintf('cart %s is locked by checkout lock %d until %s', json_encode($status->cartId, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES),
                        $status->lockId, $status->expiresAt->format(DATE_RFC3339)),
                    'KC030', $status->lockId,
                    headers: ['Retry-After' => (string) max(1, $status->expiresAt->getTimestamp() - time())],
                );
            }
        }

        return $next($request);
    }
}
