<?php

namespace Checkout\Laravel\Exceptions;

/** KC020: a payment phase without payload, a malformed payload, a reused order_ref. */
class PayloadRequired extends CheckoutException
{
    protected const HTTP_STATUS = 422;
}
