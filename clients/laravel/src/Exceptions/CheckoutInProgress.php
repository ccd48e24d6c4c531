<?php

namespace Checkout\Laravel\Exceptions;

/** KC001: another session holds the cart's active checkout lock. */
class CheckoutInProgress extends CheckoutException
{
    protected const HTTP_STATUS = 409;
}
