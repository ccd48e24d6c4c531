<?php

namespace Checkout\Laravel\Events;

use Checkout\Laravel\CheckoutStatus;

/**
 * What a call of the Checkout service did, dispatched once the call's
 * transaction commits (never after a rollback), once per call that did it: a
 * retried call (a second webhook, a double-clicked button) dispatches
 * nothing.  Serializable, so ShouldQueue listeners get it on the queue.
 */
abstract class CheckoutEvent
{
    public readonly int $lockId;

    public function __construct(public readonly CheckoutStatus $status)
    {
        $this->lockId = $status->lockId;
    }
}
