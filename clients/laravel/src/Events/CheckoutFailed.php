<?php

namespace Checkout\Laravel\Events;

/**
 * NOTIFY: checkout lock `lockId` failed (a business rule, checkout_fail, or a refused payment).  A wake-up, not a
 * statement of fact: anyone who can connect may NOTIFY, so read your own
 * records (or checkout_status with the lock's token) before acting.
 */
final class CheckoutFailed
{
    public function __construct(public readonly int $lockId)
    {
    }
}
