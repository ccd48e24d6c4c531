<?php

namespace Checkout\Laravel;

use DateTimeImmutable;
use JsonSerializable;

/**
 * A checkout lock as the extension returns it (type checkout.status).
 * `phase` is the last completed phase, null right after start.  A business
 * failure (KC010-KC015) is a status with state Failed (or Expired), never an
 * exception.
 */
final readonly class CheckoutStatus implements JsonSerializable
{
    public function __construct(
        public int $lockId,
        public string $cartId,
        public State $state,
        public ?Phase $phase,
        public DateTimeImmutable $expiresAt,
        public ?int $total,
        public ?string $orderRef,
        public ?Phase $failedPhase,
        public ?string $errorCode,
        public ?string $errorMessage,
    ) {
    }

    /** From a row of checkout.status as PDO fetched it. */
    public static function fromRow(array|object $row): self
    {
        $row = (array) $row;

        return new self(
            lockId: (int) $row['lock_id'],
            cartId: (string) $row['cart_id'],
            state: State::from($row['state']),
            phase: $row['phase'] === null ? null : Phase::from($row['phase']),
            expiresAt: new DateTimeImmutable($row['expires_at']),
            total: $row['total'] === null ? null : (int) $row['total'],
            orderRef: $row['order_ref'],
            failedPhase: $row['failed_phase'] === null ? null : Phase::from($row['failed_phase']),
            errorCode: $row['error_code'],
            errorMessage: $row['error_message'],
        );
    }

    public function isActive(): bool
    {
        return $this->state === State::Active;
    }

    public function isCompleted(): bool
    {
        return $this->state === State::Completed;
    }

    /** Failed, by a business rule (KC010-KC013) or checkout_fail (KC014). */
    public function isFailed(): bool
    {
        return $this->state === State::Failed;
    }

    public function isExpired(): bool
    {
        return $this->state === State::Expired;
    }

    public function isCancelled(): bool
    {
        return $this->state === State::Cancelled;
    }

    /** No longer active: the cart is free again. */
    public function isFinished(): bool
    {
        return $this->state !== State::Active;
    }


    public function jsonSerialize(): array
    {
        return [
            'lock_id' => $this->lockId,
            'cart_id' => $this->cartId,
            'state' => $this->state->value,
            'phase' => $this->phase?->value,
            'expires_at' => $this->expiresAt->format(DATE_RFC3339_EXTENDED),
            'total' => $this->total,
            'order_ref' => $this->orderRef,
            'failed_phase' => $this->failedPhase?->value,
            'error_code' => $this->errorCode,
            'error_message' => $this->errorMessage,
        ];
    }
}
