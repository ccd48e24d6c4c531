<?php

namespace Checkout\Laravel\Exceptions;

/** KC002: no such lock, or not this session's (the same error: no probing). */
class LockNotFound extends CheckoutException
{
    protected const HTTP_STATUS = 404;
}
