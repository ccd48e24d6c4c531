<?php

namespace Checkout\Laravel\Events;

/** Checkout::cancel cancelled the checkout (its rollback done). */
final class CheckoutCancelled extends CheckoutEvent
{
}
