<?php

namespace Checkout\Laravel\Events;

/**
 * NOTIFY: checkout lock `lockId` completed.  A wake-up, not a
 * statement of fact: anyone who can connect may NOTIFY, so read your own
 * records (or checkout_status with the lock's token) before acting.
 */
final class CheckoutCompleted
{
    public function __construct(public readonly int $lockId)
    {
    }
}
