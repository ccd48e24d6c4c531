<?php

namespace Checkout\Laravel\Events;

/**
 * NOTIFY: checkout lock `lockId` expired (its rollback done; a captured one completes instead).  A wake-up, not a
 * statement of fact: anyone who can connect may NOTIFY, so read your own
 * records (or checkout_status with the lock's token) before acting.
 */
final class CheckoutExpired
{
    public function __construct(public readonly int $lockId)
    {
    }
}
