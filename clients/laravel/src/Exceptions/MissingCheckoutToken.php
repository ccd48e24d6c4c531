<?php

namespace Checkout\Laravel\Exceptions;

use LogicException;

/**
 * A call that needs the session's checkout token where there is no started
 * session: a route outside the `web` middleware group (routes/api.php), an
 * Artisan command, a queued job.  A programming error, thrown before
 * anything is written: without it the call would act for a token nobody
 * keeps, and a started lock would hold its stock, unreachable, until it
 * expires.  Use Checkout::forToken($token) there.
 */
class MissingCheckoutToken extends LogicException
{
    public static function forCall(string $where): self
    {
        return new self("Checkout has no checkout token here: $where has no started session."
            .' Use Checkout::forToken($token) with the token the checkout started with'
            .' (Checkout::token() in the web request that started it), or give the route the web middleware.');
    }
}
