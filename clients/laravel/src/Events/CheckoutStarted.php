<?php

namespace Checkout\Laravel\Events;

/** Checkout::start made a new lock (not when it returned the token's existing one). */
final class CheckoutStarted extends CheckoutEvent
{
}
