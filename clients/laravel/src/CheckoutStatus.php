<?php

namespace Checkout\Laravel;

use DateTimeImmutable;
use JsonSerializable;
use LogicException;

/**
 * A checkout lock as the extension returns it (type checkout.status).
 * `phase` is the last completed phase, null right after start.  A business
 * failure (KC010-KC015) is a status with state Failed (or Expired), never an
 * exception.
 *
 * What this call did (extension 0.3.0 on): `created` (checkout_start made
 * the lock), `phasesRun` (the phases this call completed, in order; [] for a
 * retry, a status read, or a call that only failed or cancelled) and `ended`
 * (this call moved the lock out of active).  A retried webhook gets the same
 * state and phase as the call that did the work, but phasesRun [] and ended
 * false: act on ran() / ended, not on the state.  Null from an older server.
 */
final class CheckoutStatus implements JsonSerializable
{
    /** @param list<Phase>|null $phasesRun */
    public function __construct(
        public readonly int $lockId,
        public readonly string $cartId,
        public readonly State $state,
        public readonly ?Phase $phase,
        public readonly DateTimeImmutable $expiresAt,
        public readonly ?int $total,
        public readonly ?string $orderRef,
        public readonly ?Phase $failedPhase,
        public readonly ?string $errorCode,
        public readonly ?string $errorMessage,
        public readonly ?bool $created = null,
        public readonly ?array $phasesRun = null,
        public readonly ?bool $ended = null,
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
            created: self::bool($row['created'] ?? null),
            phasesRun: array_key_exists('phases_run', $row) ? self::phases($row['phases_run']) : null,
            ended: self::bool($row['ended'] ?? null),
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

    /** This call completed `$phase` (a retry that found it done did not). */
    public function ran(Phase $phase): bool
    {
        return in_array($phase, $this->whatThisCallDid('phasesRun'), true);
    }

    /**
     * This call changed nothing: a retried start that found its lock, a
     * retried advance whose phases were done, a status read.  (A call that
     * failed or cancelled the lock ran no phase but is no duplicate: it
     * ended the lock.)
     */
    public function isDuplicate(): bool
    {
        return $this->whatThisCallDid('phasesRun') === [] && ! $this->created && ! $this->ended;
    }

    /** The phase the next advance runs; null once the lock is finished. */
    public function nextPhase(): ?Phase
    {
        return $this->isActive() ? ($this->phase === null ? Phase::CartValidation : $this->phase->next()) : null;
    }

    /** The next advance needs a payment payload ['reference' => ..., 'amount' => ...]. */
    public function needsPayment(): bool
    {
        return $this->nextPhase()?->needsPayment() ?? false;
    }

    public function jsonSerialize(): array
    {
        return [
            'lock_id' => $this->lockId,
            'cart_id' => $this->cartId,
            'state' => $this->state->value,
            'phase' => $this->phase?->value,
            'next_phase' => $this->nextPhase()?->value,
            'expires_at' => $this->expiresAt->format(DATE_RFC3339_EXTENDED),
            'total' => $this->total,
            'order_ref' => $this->orderRef,
            'failed_phase' => $this->failedPhase?->value,
            'error_code' => $this->errorCode,
            'error_message' => $this->errorMessage,
            'created' => $this->created,
            'phases_run' => $this->phasesRun === null ? null : array_map(fn (Phase $p) => $p->value, $this->phasesRun),
            'ended' => $this->ended,
        ];
    }

    private function whatThisCallDid(string $property): mixed
    {
        if ($this->$property === null) {
            throw new LogicException('the checkout extension is older than 0.3.0: its status does not say what a call did'
                .' (ALTER EXTENSION checkout UPDATE)');
        }

        return $this->$property;
    }

    private static function bool(mixed $value): ?bool
    {
        return $value === null ? null : ($value === true || $value === 't' || $value === 1 || $value === '1');
    }

    /** checkout.phase[] as PDO returns it: '{payment_capture,stock_commit}' */
    private static function phases(?string $array): array
    {
        $names = $array === null || $array === '{}' ? [] : explode(',', trim($array, '{}'));

        return array_map(fn (string $name) => Phase::from($name), $names);
    }
}
