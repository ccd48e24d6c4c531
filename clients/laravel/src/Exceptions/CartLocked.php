<?php

namespace Checkout\Laravel\Exceptions;

/** KC030: the application changed a cart's rows while a checkout holds it (checkout.protect_cart). */
class CartLocked extends CheckoutException
{
    protected const HTTP_STATUS = 423;
}
