<?php

namespace Checkout\Laravel\Events;

use Checkout\Laravel\Phase;

/**
 * Checkout::advance completed phases: `$status->phasesRun`, in order.
 * `ran(Phase::PaymentCapture)` is true for the one call that recorded the
 * capture - the place for "send the confirmation email" (a retried webhook
 * runs no phase and dispatches no event).
 */
final class CheckoutAdvanced extends CheckoutEvent
{
    public function ran(Phase $phase): bool
    {
        return $this->status->ran($phase);
    }
}
