<?php

namespace Checkout\Laravel\Events;

/**
 * A call completed the checkout (stock_commit ran): dispatched by that call,
 * after CheckoutAdvanced.  A checkout the server completes by itself (an
 * overdue lock whose payment was captured rolls forward) is no call's: its
 * capture was CheckoutAdvanced with ran(Phase::PaymentCapture).
 */
final class CheckoutCompleted extends CheckoutEvent
{
}
