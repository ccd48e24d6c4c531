<?php

namespace Checkout\Laravel;

use Checkout\Laravel\Exceptions\CheckoutException;
use DateInterval;
use Illuminate\Contracts\Container\Container;
use Illuminate\Contracts\Session\Session;
use Illuminate\Database\Connection;
use Illuminate\Database\ConnectionResolverInterface;
use Illuminate\Database\QueryException;
use LogicException;

/**
 * The checkout extension's application API (role checkout_app).
 *
 * Every call is one statement and runs in the caller's transaction; inside a
 * DB::transaction it runs under a savepoint, so a raised error (which changes
 * nothing) leaves the caller's transaction usable.  Errors the extension
 * raises become CheckoutException subclasses; business failures come back as
 * a CheckoutStatus in state failed.
 *
 * The extension's session_id is a checkout token kept in the Laravel session
 * (CheckoutToken), never Laravel's session id, which changes on login.
 */
class Checkout
{
    /** Session key: cart id => lock id of the checkouts this session started (for the middleware). */
    public const SESSION_LOCKS = '_checkout_locks';

    private ?string $token = null;

    public function __construct(
        private readonly ConnectionResolverInterface $db,
        private readonly Container $app,
        private readonly array $config,
    ) {
    }

    /**
     * The same service acting for another checkout token: for a queue job or
     * a payment webhook, which have no browser session.  Store the token with
     * the order when the checkout starts (Checkout::token()).
     */
    public function forToken(string $token): static
    {
        $clone = clone $this;
        $clone->token = $token;

        return $clone;
    }

    /** The checkout token this service acts for (the session's, unless forToken). */
    public function token(): string
    {
        return $this->token ?? CheckoutToken::of($this->session());
    }

    /**
     * Take the cart's checkout lock.  `$lines` is a list of
     * ['line_id' => ..., 'sku' => ..., 'quantity' => int, 'unit_price' => int]
     * (prices in minor units).  `$ttl`: seconds, a DateInterval or a
     * PostgreSQL interval string; null uses config('checkout.ttl').
     */
    public function start(string $cartId, array $lines, int|string|DateInterval|null $ttl = null, ?string $idempotencyKey = null): CheckoutStatus
    {
        $ttl ??= $this->config['ttl'] ?? null;
        $status = $this->call(
            'select * from checkout_start(?, ?, ?::jsonb, ?::interval, ?)',
            [$cartId, $this->token(), self::json($lines), self::interval($ttl), $idempotencyKey],
        );
        if ($this->token === null && $status->isActive()) {
            $this->afterCommit(fn () => $this->remember($status));
        }

        return $status;
    }

    /**
     * Run the next phase, or every phase up to and including `$until`
     * (stopping, without error, before a payment phase that has no payload).
     * `$payload`: ['reference' => ..., 'amount' => int] for the payment
     * phases, ['order_ref' => ...] for the application's own order reference.
     */
    public function advance(int $lockId, array $payload = [], Phase|string|null $until = null): CheckoutStatus
    {
        $until = is_string($until) ? Phase::from($until) : $until;

        return $this->finishing($this->call(
            'select * from checkout_advance(?, ?, ?::jsonb, ?::checkout.phase)',
            [$lockId, $this->token(), self::json((object) $payload), $until?->value],
            $lockId,
            $until,
        ));
    }

    /** Read-only; an overdue lock shows as expired. */
    public function status(int $lockId): CheckoutStatus
    {
        return $this->finishing($this->call('select * from checkout_status(?, ?)', [$lockId, $this->token()], $lockId));
    }

    /** Push the deadline by `$by` (never past the server's checkout.max_ttl from creation). */
    public function extend(int $lockId, int|string|DateInterval $by): CheckoutStatus
    {
        return $this->finishing($this->call(
            'select * from checkout_extend(?, ?, ?::interval)',
            [$lockId, $this->token(), self::interval($by)],
            $lockId,
        ));
    }

    /** Cancel, rolling back what was done (stock released, payments to void/refund recorded). */
    public function cancel(int $lockId): CheckoutStatus
    {
        return $this->finishing($this->call('select * from checkout_cancel(?, ?)', [$lockId, $this->token()], $lockId));
    }

    /** A failure the application saw (a declined card, ...): state failed, KC014, with rollback. */
    public function fail(int $lockId, string $reason): CheckoutStatus
    {
        return $this->finishing($this->call('select * from checkout_fail(?, ?, ?)', [$lockId, $this->token(), $reason], $lockId));
    }

    /** The lock this session holds on `$cartId`, as far as the session knows (started here, not yet seen finished). */
    public function lockIdForCart(string $cartId): ?int
    {
        $locks = $this->token === null ? $this->session()->get(self::SESSION_LOCKS, []) : [];

        return isset($locks[$cartId]) ? (int) $locks[$cartId] : null;
    }

    /** Forget the session's record of the lock on `$cartId` (it finished or vanished). */
    public function forgetCart(string $cartId): void
    {
        if ($this->token === null) {
            $locks = $this->session()->get(self::SESSION_LOCKS, []);
            unset($locks[$cartId]);
            $this->session()->put(self::SESSION_LOCKS, $locks);
        }
    }

    /**
     * Mark a compensation (void or refund) done at the gateway.  True when
     * this call resolved it, false when it was resolved already.
     */
    public function resolveCompensation(int $compensationId): bool
    {
        return $this->connection()->update(
            'update checkout.compensations set resolved_at = now() where compensation_id = ? and resolved_at is null',
            [$compensationId],
        ) === 1;
    }

    public function connection(): Connection
    {
        return $this->db->connection($this->config['connection'] ?? null);
    }

    private function call(string $sql, array $bindings, ?int $lockId = null, ?Phase $phase = null): CheckoutStatus
    {
        $connection = $this->connection();
        $run = fn () => $connection->selectOne($sql, $bindings, false);
        try {
            // In a transaction, a savepoint keeps a raised error from aborting it.
            $row = $connection->transactionLevel() > 0 ? $connection->transaction($run) : $run();
        } catch (QueryException $e) {
            throw CheckoutException::fromQueryException($e, $lockId, $phase) ?? $e;
        }

        return CheckoutStatus::fromRow($row);
    }

    private function finishing(CheckoutStatus $status): CheckoutStatus
    {
        if ($status->isFinished() && $this->lockIdForCart($status->cartId) === $status->lockId) {
            $this->forgetCart($status->cartId);
        }

        return $status;
    }

    private function remember(CheckoutStatus $status): void
    {
        // one array, not dot notation: a cart id may contain dots
        $locks = $this->session()->get(self::SESSION_LOCKS, []);
        $locks[$status->cartId] = $status->lockId;
        $this->session()->put(self::SESSION_LOCKS, $locks);
    }

    /** Run once the current transaction commits (at once outside one); never after a rollback. */
    private function afterCommit(callable $callback): void
    {
        $connection = $this->connection();
        if ($connection->transactionLevel() > 0 && $this->app->bound('db.transactions')) {
            $connection->afterCommit($callback);
        } else {
            $callback();
        }
    }

    private function session(): Session
    {
        if (! $this->app->bound('session.store')) {
            throw new LogicException('no session: outside a web request, use Checkout::forToken($token)');
        }

        return $this->app->make('session.store');
    }

    private static function json(array|object $value): string
    {
        return json_encode($value, JSON_THROW_ON_ERROR | JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
    }

    /** A PostgreSQL interval literal: seconds, a DateInterval, or an interval string as is. */
    private static function interval(int|string|DateInterval|null $value): ?string
    {
        if ($value === null || is_string($value)) {
            return $value;
        }
        if (is_int($value)) {
            return $value.' seconds';
        }
        $sign = $value->invert ? '-' : '';

        return sprintf('%s%d years %s%d months %s%d days %s%d hours %s%d minutes %s%s seconds',
            $sign, $value->y, $sign, $value->m, $sign, $value->d, $sign, $value->h, $sign, $value->i,
            $sign, rtrim(rtrim(sprintf('%d.%06d', $value->s, (int) round($value->f * 1e6)), '0'), '.'));
    }
}
