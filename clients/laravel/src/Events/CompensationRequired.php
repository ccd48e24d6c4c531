<?php

namespace Checkout\Laravel\Events;

use DateTimeImmutable;

/**
 * Money to give back at the payment gateway: void an authorisation
 * (void_required) or refund a capture (refund_required).  Built from the
 * unresolved row of checkout.compensations, not from the NOTIFY payload.
 * Once done at the gateway, mark it: Checkout::resolveCompensation($id).
 */
final class CompensationRequired
{
    public function __construct(
        public readonly int $compensationId,
        public readonly int $lockId,
        public readonly string $kind,
        public readonly string $reference,
        public readonly int $amount,
        public readonly DateTimeImmutable $createdAt,
    ) {
    }

    public function isRefund(): bool
    {
        return $this->kind === 'refund_required';
    }

    public function isVoid(): bool
    {
        return $this->kind === 'void_required';
    }
}
