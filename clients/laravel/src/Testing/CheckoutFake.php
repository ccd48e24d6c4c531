<?php

namespace Checkout\Laravel\Testing;

use Carbon\CarbonImmutable;
use Checkout\Laravel\Checkout;
use Checkout\Laravel\CheckoutStatus;
use Checkout\Laravel\Phase;
use Checkout\Laravel\State;
use PDOException;
use PHPUnit\Framework\Assert as PHPUnit;

/**
 * Checkout::fake(): the service with an in-memory server, for tests that
 * need no database.  It keeps the extension's rules that an application
 * relies on - one active lock per cart (KC001), locks by token (KC002), the
 * phase order, payment phases only with a payload (KC020), the amounts
 * (KC013), expiry when the deadline (Carbon's now, so travel() works) has
 * passed - and says what each call did (created, phasesRun, ended), so the
 * same events are dispatched.  Stock and prices are not kept: every sku
 * exists and is in stock at the cart's price, unless failAt() says
 * otherwise.  Records every call for the assertions.
 */
class CheckoutFake extends Checkout
{
    /**
     * Shared by the copies forToken() makes: locks (lock id => the lock's row
     * and what the fake keeps), calls (function, arguments, status), failures
     * (phase => [error code, message] for the next run of that phase),
     * resolved compensations, the next lock id.
     */
    private object $store;

    public function __construct(...$arguments)
    {
        parent::__construct(...$arguments);
        $this->store = (object) ['locks' => [], 'calls' => [], 'failures' => [], 'resolved' => [], 'nextLockId' => 1];
    }

    /**
     * The next run of `$phase` fails as the server's business rules would:
     * KC010 at cart_validation, KC011 at inventory_reservation, KC012 at
     * price_lock, KC013 at a payment phase.
     */
    public function failAt(Phase $phase, string $code, string $message): static
    {
        $this->store->failures[$phase->value] = [$code, $message];

        return $this;
    }

    /** Put the lock's deadline in the past (as if its time to live ran out). */
    public function expire(int $lockId): static
    {
        $this->store->locks[$lockId]['expires_at'] = CarbonImmutable::now()->subSecond();

        return $this;
    }

    public function resolveCompensation(int $compensationId): bool
    {
        if (isset($this->store->resolved[$compensationId])) {
            return false;
        }

        return $this->store->resolved[$compensationId] = true;
    }

    /** Every call made, in order: [function, arguments (without the token), status or null when it raised]. */
    public function calls(?string $function = null): array
    {
        return array_values(array_filter($this->store->calls, fn (array $c) => $function === null || $c['function'] === $function));
    }

    // --- assertions (PHPUnit's, as Laravel's fakes) ----------------------------

    /** A checkout was started for `$cartId`; `$callback(CheckoutStatus $status, array $lines): bool` narrows it. */
    public function assertStarted(string $cartId, ?callable $callback = null): void
    {
        PHPUnit::assertNotEmpty(array_filter($this->calls('checkout_start'), fn (array $c) => $c['arguments'][0] === $cartId
            && $c['status'] !== null && ($callback === null || $callback($c['status'], json_decode($c['arguments'][1], true)))),
            "No checkout was started for cart \"$cartId\"".($callback ? ' matching the callback.' : '.'));
    }

    public function assertNotStarted(string $cartId): void
    {
        PHPUnit::assertEmpty(array_filter($this->calls('checkout_start'), fn (array $c) => $c['arguments'][0] === $cartId && $c['status'] !== null),
            "A checkout was started for cart \"$cartId\".");
    }

    public function assertNothingStarted(): void
    {
        PHPUnit::assertEmpty(array_filter($this->calls('checkout_start'), fn (array $c) => $c['status'] !== null),
            'Checkouts were started.');
    }

    /** Lock `$lockId` was advanced; with `$phase`, a call ran that phase. */
    public function assertAdvanced(int $lockId, ?Phase $phase = null): void
    {
        PHPUnit::assertNotEmpty(array_filter($this->calls('checkout_advance'), fn (array $c) => $c['arguments'][0] === $lockId
            && $c['status'] !== null && ($phase === null || $c['status']->ran($phase))),
            "Checkout lock $lockId was not advanced".($phase ? " through {$phase->value}." : '.'));
    }

    public function assertNotAdvanced(int $lockId): void
    {
        PHPUnit::assertEmpty(array_filter($this->calls('checkout_advance'), fn (array $c) => $c['arguments'][0] === $lockId && $c['status'] !== null),
            "Checkout lock $lockId was advanced.");
    }

    public function assertCompleted(int $lockId): void
    {
        $this->assertEnded($lockId, State::Completed, 'completed');
    }

    public function assertCancelled(int $lockId): void
    {
        $this->assertEnded($lockId, State::Cancelled, 'cancelled');
    }

    /** Lock `$lockId` was failed, by a business rule or by fail(); with `$code`, that error code (KC014: fail()). */
    public function assertFailed(int $lockId, ?string $code = null): void
    {
        $this->assertEnded($lockId, State::Failed, 'failed', fn (CheckoutStatus $s) => $code === null || $s->errorCode === $code);
    }

    public function assertExtended(int $lockId): void
    {
        PHPUnit::assertNotEmpty(array_filter($this->calls('checkout_extend'), fn (array $c) => $c['arguments'][0] === $lockId && $c['status'] !== null),
            "Checkout lock $lockId was not extended.");
    }

    private function assertEnded(int $lockId, State $state, string $what, ?callable $also = null): void
    {
        PHPUnit::assertNotEmpty(array_filter($this->store->calls, fn (array $c) => ($c['arguments'][0] ?? null) === $lockId
            && $c['status']?->ended && $c['status']->state === $state && ($also === null || $also($c['status']))),
            "Checkout lock $lockId was not $what by a call.");
    }

    // --- the in-memory server ----------------------------------------------------

    protected function afterCommit(callable $callback): void
    {
        $callback();
    }

    protected function execute(string $function, array $arguments): array
    {
        $token = $arguments[1];
        $recorded = $arguments;
        unset($recorded[1]);
        $this->store->calls[] = ['function' => $function, 'arguments' => array_values($recorded), 'status' => null];
        $call = array_key_last($this->store->calls);
        $row = match ($function) {
            'checkout_start' => $this->start_(...$arguments),
            'checkout_advance' => $this->advance_($this->touch($arguments[0], $token), json_decode($arguments[2], true), $arguments[3]),
            'checkout_status' => $this->row($this->lock($arguments[0], $token), overdueShowsExpired: true),
            'checkout_extend' => $this->extend_($this->touch($arguments[0], $token), $arguments[2]),
            'checkout_cancel' => $this->end($this->touch($arguments[0], $token), State::Cancelled),
            'checkout_fail' => $this->end($this->touch($arguments[0], $token), State::Failed, 'KC014', $arguments[2]),
        };
        $this->store->calls[$call]['status'] = CheckoutStatus::fromRow($row);

        return $row;
    }

    private function start_(string $cartId, string $token, string $linesJson, ?string $ttl, ?string $idempotencyKey): array
    {
        $lines = json_decode($linesJson, true);
        if (! is_array($lines) || ! array_is_list($lines)) {
            self::raise('22023', 'cart lines must be a JSON array');
        }
        if ($lines === []) {
            self::raise('22023', 'cart has no lines');
        }
        foreach ($lines as $i => $line) {
            foreach (['line_id' => 'is_string', 'sku' => 'is_string', 'quantity' => 'is_int', 'unit_price' => 'is_int'] as $key => $is) {
                if (! is_array($line) || ! $is($line[$key] ?? null) || ($key === 'quantity' && $line[$key] < 1) || ($key === 'unit_price' && $line[$key] < 0)) {
                    self::raise('22023', sprintf('invalid cart line %d: "%s" is missing or invalid', $i + 1, $key));
                }
            }
        }
        foreach ($this->store->locks as $lock) {
            if ($idempotencyKey !== null && $lock['idempotency_key'] === $idempotencyKey && $lock['token'] === $token) {
                return $this->row($lock);
            }
        }
        foreach ($this->store->locks as $id => $lock) {
            if ($lock['cart_id'] === $cartId && $lock['state'] === State::Active) {
                $lock = $this->touch($id, $lock['token']);
                if ($lock['state'] === State::Active) {
                    if ($lock['token'] !== $token) {
                        self::raise('KC001', sprintf('checkout already in progress for cart %s', json_encode($cartId)));
                    }

                    return $this->row($lock);
                }
            }
        }
        $ttlSeconds = self::seconds($ttl ?? '15 minutes');
        if ($ttlSeconds <= 0) {
            self::raise('22023', 'ttl must be a positive interval');
        }
        $now = CarbonImmutable::now();
        $id = $this->store->nextLockId++;
        $this->store->locks[$id] = [
            'lock_id' => $id, 'cart_id' => $cartId, 'token' => $token, 'state' => State::Active, 'phase' => null,
            'created_at' => $now, 'expires_at' => $now->addSeconds(min($ttlSeconds, 3600)),
            'total' => null, 'order_ref' => null, 'failed_phase' => null, 'error_code' => null, 'error_message' => null,
            'lines' => $lines, 'idempotency_key' => $idempotencyKey, 'authorised' => null, 'captured' => false,
        ];

        return $this->row($this->store->locks[$id], created: true);
    }

    private function advance_(array $lock, array $payload, ?string $until): array
    {
        $until = $until === null ? null : Phase::from($until);
        if ($lock['state'] !== State::Active) {
            if ($lock['just_expired'] ?? false) {
                return $this->row($lock, ended: true);
            }
            if ($until !== null && $lock['phase'] !== null && $lock['phase']->ordinal() >= $until->ordinal()) {
                return $this->row($lock);
            }
            self::raise('KC004', sprintf('checkout lock %d is %s', $lock['lock_id'], $lock['state']->value));
        }
        $payment = null;
        if (isset($payload['reference']) || isset($payload['amount'])) {
            if (! is_string($payload['reference'] ?? null) || $payload['reference'] === '' || ! is_int($payload['amount'] ?? null) || $payload['amount'] < 0) {
                self::raise('KC020', 'malformed payment payload');
            }
            $payment = $payload;
        }
        $target = $until ?? ($lock['phase'] === null ? Phase::CartValidation : $lock['phase']->next());
        $ran = [];
        for ($phase = $lock['phase'] === null ? Phase::CartValidation : $lock['phase']->next();
             $phase !== null && $phase->ordinal() <= $target->ordinal(); $phase = $phase->next()) {
            if ($phase->needsPayment() && $payment === null) {
                if ($until !== null) {
                    break;
                }
                self::raise('KC020', "phase {$phase->value} requires a payload");
            }
            [$code, $message] = $this->store->failures[$phase->value] ?? [null, null];
            unset($this->store->failures[$phase->value]);
            if ($code === null && $phase->needsPayment()) {
                $expected = $phase === Phase::PaymentAuthorization ? $lock['total'] : $lock['authorised'];
                if ($payment['amount'] !== $expected) {
                    [$code, $message] = ['KC013', sprintf('payment amount %d does not match %d', $payment['amount'], $expected)];
                }
            }
            if ($code !== null) {
                $lock = array_merge($lock, ['state' => State::Failed, 'failed_phase' => $phase, 'error_code' => $code, 'error_message' => $message]);
                $this->store->locks[$lock['lock_id']] = $lock;

                return $this->row($lock, phasesRun: $ran, ended: true);
            }
            match ($phase) {
                Phase::PriceLock => $lock['total'] = array_sum(array_map(fn (array $l) => $l['quantity'] * $l['unit_price'], $lock['lines'])),
                Phase::PaymentAuthorization => $lock['authorised'] = $payment['amount'],
                Phase::OrderCreation => $lock['order_ref'] = $payload['order_ref'] ?? 'CO-'.$lock['lock_id'],
                Phase::PaymentCapture => $lock['captured'] = true,
                Phase::StockCommit => $lock['state'] = State::Completed,
                default => null,
            };
            $lock['phase'] = $phase;
            $ran[] = $phase;
        }
        $this->store->locks[$lock['lock_id']] = $lock;

        return $this->row($lock, phasesRun: $ran, ended: $lock['state'] === State::Completed);
    }

    private function extend_(array $lock, ?string $by): array
    {
        if ($lock['just_expired'] ?? false) {
            return $this->row($lock, ended: true);
        }
        if ($lock['state'] !== State::Active) {
            self::raise('KC004', sprintf('checkout lock %d is %s', $lock['lock_id'], $lock['state']->value));
        }
        $seconds = self::seconds((string) $by);
        if ($seconds <= 0) {
            self::raise('22023', 'by must be a positive interval');
        }
        $lock['expires_at'] = min($lock['expires_at']->addSeconds($seconds), $lock['created_at']->addHour());
        $this->store->locks[$lock['lock_id']] = $lock;

        return $this->row($lock);
    }

    private function end(array $lock, State $state, ?string $code = null, ?string $reason = null): array
    {
        if ($lock['just_expired'] ?? false) {
            return $this->row($lock, ended: true);
        }
        if ($lock['state'] !== State::Active) {
            self::raise('KC004', sprintf('checkout lock %d is %s', $lock['lock_id'], $lock['state']->value));
        }
        $lock = array_merge($lock, ['state' => $state, 'error_code' => $code, 'error_message' => $reason,
            'failed_phase' => $code === null ? null : ($lock['phase'] === null ? Phase::CartValidation : $lock['phase']->next())]);
        $this->store->locks[$lock['lock_id']] = $lock;

        return $this->row($lock, ended: true);
    }

    /** The token's lock, expired first when overdue (a paid one rolls forward to completed). */
    private function touch(int $lockId, string $token): array
    {
        $lock = $this->lock($lockId, $token);
        unset($lock['just_expired']);
        if ($lock['state'] === State::Active && $lock['expires_at'] <= CarbonImmutable::now()) {
            $lock = $lock['captured']
                ? array_merge($lock, ['state' => State::Completed, 'phase' => Phase::StockCommit])
                : array_merge($lock, ['state' => State::Expired, 'error_code' => 'KC015', 'error_message' => 'checkout lock expired',
                    'failed_phase' => $lock['phase'] === null ? Phase::CartValidation : $lock['phase']->next()]);
            $lock['just_expired'] = true;
        }
        $this->store->locks[$lockId] = $lock;

        return $lock;
    }

    private function lock(int $lockId, string $token): array
    {
        if (! isset($this->store->locks[$lockId]) || $this->store->locks[$lockId]['token'] !== $token) {
            self::raise('KC002', "checkout lock $lockId not found");
        }

        return $this->store->locks[$lockId];
    }

    private function row(array $lock, bool $created = false, array $phasesRun = [], bool $ended = false, bool $overdueShowsExpired = false): array
    {
        $state = $lock['state'];
        if ($overdueShowsExpired && $state === State::Active && $lock['expires_at'] <= CarbonImmutable::now()) {
            $state = $lock['captured'] ? State::Completed : State::Expired;
        }

        return [
            'lock_id' => $lock['lock_id'], 'cart_id' => $lock['cart_id'], 'state' => $state->value,
            'phase' => $lock['phase']?->value, 'expires_at' => $lock['expires_at']->format(DATE_RFC3339_EXTENDED),
            'total' => $lock['total'], 'order_ref' => $lock['order_ref'], 'failed_phase' => $lock['failed_phase']?->value,
            'error_code' => $lock['error_code'], 'error_message' => $lock['error_message'],
            'created' => $created, 'phases_run' => '{'.implode(',', array_map(fn (Phase $p) => $p->value, $phasesRun)).'}',
            'ended' => $ended,
        ];
    }

    /** Seconds of what the service sends: '600 seconds', '20 minutes', '0 years 0 months 0 days 1 hours ...'. */
    private static function seconds(string $interval): int
    {
        $units = ['y' => 365 * 86400, 'mon' => 30 * 86400, 'd' => 86400, 'h' => 3600, 'min' => 60, 's' => 1];
        if (! preg_match_all('/\s*(-?\d+(?:\.\d+)?)\s*(years?|months?|mons?|days?|hours?|minutes?|mins?|seconds?|secs?|s)\s*/i', $interval, $m, PREG_SET_ORDER)
            || implode('', array_column($m, 0)) !== $interval) {
            self::raise('22023', sprintf('invalid input syntax for type interval: %s', json_encode($interval)));
        }
        $seconds = 0.0;
        foreach ($m as [, $number, $unit]) {
            $unit = strtolower($unit);
            $seconds += (float) $number * match (true) {
                str_starts_with($unit, 'y') => $units['y'],
                str_starts_with($unit, 'mo') => $units['mon'],
                str_starts_with($unit, 'd') => $units['d'],
                str_starts_with($unit, 'h') => $units['h'],
                str_starts_with($unit, 'mi') => $units['min'],
                default => $units['s'],
            };
        }

        return (int) round($seconds);
    }

    /** An error as PDO reports the extension's: the service maps it as it maps the server's. */
    private static function raise(string $sqlState, string $message): never
    {
        $e = new PDOException("SQLSTATE[$sqlState]: ERROR:  $message");
        $e->errorInfo = [$sqlState, 7, "ERROR:  $message"];

        throw $e;
    }
}
