<?php

namespace Checkout\Laravel\Exceptions;

/** KC004: the lock is completed, failed, expired or cancelled. */
class LockNotActive extends CheckoutException
{
    protected const HTTP_STATUS = 409;
}
