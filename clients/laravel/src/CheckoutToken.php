<?php

namespace Checkout\Laravel;

use Illuminate\Contracts\Session\Session;

/**
 * The session_id the extension sees: a random token kept in the session's
 * data, made on first use.  Not Laravel's session id, which
 * session()->regenerate() changes on login (that would orphan the lock);
 * regenerate() keeps the session's data, and so the token.  invalidate()
 * (logout) drops it: a checkout does not outlive its customer's login.
 */
final class CheckoutToken
{
    public const SESSION_KEY = '_checkout_token';

    public static function of(Session $session): string
    {
        $token = $session->get(self::SESSION_KEY);
        if (! is_string($token) || ! preg_match('/^[0-9a-f]{64}$/', $token)) {
            $token = bin2hex(random_bytes(32));
            $session->put(self::SESSION_KEY, $token);
        }

        return $token;
    }
}
