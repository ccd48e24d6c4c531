<?php

namespace Checkout\Laravel\Events;

/**
 * Checkout lock `lockId` expired (its rollback done), dispatched by
 * checkout:listen from the server's NOTIFY: an expiry happens outside any
 * request (the background worker, checkout:prune-expired, or a call that
 * touched the overdue lock), and the server notifies every one.  A wake-up,
 * not a statement of fact: anyone who can connect may NOTIFY, so read your
 * own records (or checkout_status with the lock's token) before acting.
 */
final class CheckoutExpired
{
    public function __construct(public readonly int $lockId)
    {
    }
}
