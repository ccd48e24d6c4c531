<?php

namespace Checkout\Laravel\Exceptions;

/** 22023: bad cart lines, ttl or interval not positive, an empty, NULL or too long argument (also 22003: a cart total beyond bigint). */
class InvalidInput extends CheckoutException
{
    protected const HTTP_STATUS = 422;
}
