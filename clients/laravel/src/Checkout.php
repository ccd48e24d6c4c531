<?php

namespace Checkout\Laravel;

use Checkout\Laravel\Events\CheckoutAdvanced;
use Checkout\Laravel\Events\CheckoutCancelled;
use Checkout\Laravel\Events\CheckoutCompleted;
use Checkout\Laravel\Events\CheckoutFailed;
use Checkout\Laravel\Events\CheckoutStarted;
use Checkout\Laravel\Exceptions\CheckoutException;
use Checkout\Laravel\Exceptions\InvalidInput;
use Checkout\Laravel\Exceptions\MissingCheckoutToken;
use DateInterval;
use Illuminate\Contracts\Container\Container;
use Illuminate\Contracts\Events\Dispatcher;
use Illuminate\Contracts\Session\Session;
use Illuminate\Database\Connection;
use Illuminate\Database\ConnectionResolverInterface;
use Illuminate\Database\QueryException;
use PDOException;

/**
 * The checkout extension's application API (role checkout_app).
 *
 * Every call is one statement and runs in the caller's transaction; inside a
 * DB::transaction it runs under a savepoint, so a raised error (which changes
 * nothing) leaves the caller's transaction usable.  Errors the extension
 * raises become CheckoutException subclasses; business failures come back as
 * a CheckoutStatus in state failed.  What a call did is dispatched as an
 * event once its transaction commits (CheckoutStarted, CheckoutAdvanced,
 * CheckoutCompleted, CheckoutFailed, CheckoutCancelled).
 *
 * The extension's session_id is a checkout token kept in the Laravel session
 * (CheckoutToken), never Laravel's session id, which changes on login.  Where
 * no session was started (routes/api.php, Artisan, queued jobs) a call
 * without forToken() throws MissingCheckoutToken before it runs.
 */
class Checkout
{
    /** Session key: cart id => lock id of the checkouts this session started (for the middleware). */
    public const SESSION_LOCKS = '_checkout_locks';

    protected ?string $token = null;

    public function __construct(
        protected readonly ConnectionResolverInterface $db,
        protected readonly Container $app,
        protected readonly array $config,
    ) {
    }

    /**
     * The same service acting for another checkout token: for an API
     * client, a queue job or a payment webhook, which have no browser
     * session.  Store the token with the order when the checkout starts
     * (Checkout::token()).
     */
    public function forToken(string $token): static
    {
        $clone = clone $this;
        $clone->token = $token;

        return $clone;
    }

    /**
     * The checkout token this service acts for: forToken's, else the started
     * session's (made on first use).  MissingCheckoutToken without either.
     */
    public function token(): string
    {
        return $this->token ?? CheckoutToken::of($this->session());
    }

    /**
     * Take the cart's checkout lock.  `$lines` is a list of
     * ['line_id' => ..., 'sku' => ..., 'quantity' => int, 'unit_price' => int]
     * (prices in minor units).  `$ttl`: seconds, a DateInterval or a
     * PostgreSQL interval string; null uses config('checkout.ttl').  The
     * status's `created` says whether this call made the lock or found this
     * token's active one (or the one of `$idempotencyKey`).
     */
    public function start(string $cartId, array $lines, int|string|DateInterval|null $ttl = null, ?string $idempotencyKey = null): CheckoutStatus
    {
        $token = $this->token();
        $ttl ??= $this->config['ttl'] ?? null;
        $status = $this->call('checkout_start', [$cartId, $token, self::json($lines), self::interval($ttl), $idempotencyKey],
            field: 'lines');
        if ($this->token === null && $status->isActive()) {
            $this->afterCommit(fn () => $this->remember($status));
        }

        return $this->dispatched($status);
    }

    /**
     * Run the next phase, or every phase up to and including `$until`
     * (stopping, without error, before a payment phase that has no payload).
     * `$payload`: ['reference' => ..., 'amount' => int] for the payment
     * phases, ['order_ref' => ...] for the application's own order reference.
     * `$until` may come from a request: a name that is no phase is a 422
     * (InvalidInput), before anything runs.
     */
    public function advance(int $lockId, array $payload = [], Phase|string|null $until = null): CheckoutStatus
    {
        $until = is_string($until) ? self::phaseNamed($until, $lockId) : $until;
        $token = $this->token();

        return $this->finishing($this->call(
            'checkout_advance', [$lockId, $token, self::json((object) $payload), $until?->value],
            $lockId, 'payload', $payload,
        ));
    }

    /** Read-only; an overdue lock shows as expired. */
    public function status(int $lockId): CheckoutStatus
    {
        return $this->finishing($this->call('checkout_status', [$lockId, $this->token()], $lockId));
    }

    /** Push the deadline by `$by` (never past the server's checkout.max_ttl from creation). */
    public function extend(int $lockId, int|string|DateInterval $by): CheckoutStatus
    {
        return $this->finishing($this->call('checkout_extend', [$lockId, $this->token(), self::interval($by)], $lockId, 'by'));
    }

    /** Cancel, rolling back what was done (stock released, payments to void/refund recorded). */
    public function cancel(int $lockId): CheckoutStatus
    {
        return $this->finishing($this->call('checkout_cancel', [$lockId, $this->token()], $lockId));
    }

    /** A failure the application saw (a declined card, ...): state failed, KC014, with rollback. */
    public function fail(int $lockId, string $reason): CheckoutStatus
    {
        return $this->finishing($this->call('checkout_fail', [$lockId, $this->token(), $reason], $lockId, 'reason'));
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

    /**
     * One API function's status row, as an array.  The fake (Checkout::fake())
     * answers here from memory; errors are PDOExceptions with the extension's
     * SQLSTATE either way.
     */
    protected function execute(string $function, array $arguments): array
    {
        $casts = [
            'checkout_start' => '?, ?, ?::jsonb, ?::interval, ?',
            'checkout_advance' => '?, ?, ?::jsonb, ?::checkout.phase',
            'checkout_status' => '?, ?',
            'checkout_extend' => '?, ?, ?::interval',
            'checkout_cancel' => '?, ?',
            'checkout_fail' => '?, ?, ?',
        ];
        $connection = $this->connection();
        $run = fn () => (array) $connection->selectOne("select * from $function({$casts[$function]})", $arguments, false);

        // In a transaction, a savepoint keeps a raised error from aborting it.
        return $connection->transactionLevel() > 0 ? $connection->transaction($run) : $run();
    }

    /** Run once the current transaction commits (at once outside one); never after a rollback. */
    protected function afterCommit(callable $callback): void
    {
        $connection = $this->connection();
        if ($connection->transactionLevel() > 0 && $this->app->bound('db.transactions')) {
            $connection->afterCommit($callback);
        } else {
            $callback();
        }
    }

    private function call(string $function, array $arguments, ?int $lockId = null, ?string $field = null,
        array $payload = []): CheckoutStatus
    {
        try {
            $row = $this->execute($function, $arguments);
        } catch (QueryException|PDOException $e) {
            $sqlState = CheckoutException::sqlStateOf($e);
            // a payload is refused before any phase runs: name the phase that would have read it
            $phase = $function === 'checkout_advance' && in_array($sqlState, ['KC020', '22023'], true)
                ? $this->refusingPhase($lockId, $e) : null;
            throw CheckoutException::fromQueryException($e, $lockId, $phase, $field, $payload) ?? $e;
        }

        return CheckoutStatus::fromRow($row);
    }

    /**
     * The phase whose payload the server refused: the order phase for an
     * order_ref, else the next payment phase from where the lock stands.
     */
    private function refusingPhase(?int $lockId, \Throwable $e): ?Phase
    {
        if (str_contains($e->getMessage(), 'order payload') || str_contains($e->getMessage(), 'order_ref ')) {
            return Phase::OrderCreation;
        }
        try {
            $next = CheckoutStatus::fromRow($this->execute('checkout_status', [$lockId, $this->token()]))->nextPhase();
        } catch (QueryException|PDOException) {
            return null;
        }
        for ($phase = $next; $phase !== null; $phase = $phase->next()) {
            if ($phase->needsPayment()) {
                return $phase;
            }
        }

        return $next;
    }

    private function finishing(CheckoutStatus $status): CheckoutStatus
    {
        if ($status->isFinished() && $this->lockIdForCart($status->cartId) === $status->lockId) {
            $this->forgetCart($status->cartId);
        }

        return $this->dispatched($status);
    }

    /**
     * Dispatch what this call did, once its transaction commits: a retry
     * (nothing created, no phase run, nothing ended) dispatches nothing.
     * An expiry is the listener's (checkout:listen): the server notifies
     * every one, wherever it happened.
     */
    private function dispatched(CheckoutStatus $status): CheckoutStatus
    {
        if ($status->created === null) {
            return $status;   // a server older than 0.3.0 does not say what the call did
        }
        $events = [];
        if ($status->created) {
            $events[] = new CheckoutStarted($status);
        }
        if ($status->phasesRun !== []) {
            $events[] = new CheckoutAdvanced($status);
        }
        if ($status->ended) {
            $events[] = match ($status->state) {
                State::Completed => new CheckoutCompleted($status),
                State::Failed => new CheckoutFailed($status),
                State::Cancelled => new CheckoutCancelled($status),
                default => null,
            };
        }
        $events = array_filter($events);
        if ($events !== [] && $this->app->bound('events')) {
            $dispatcher = $this->app->make(Dispatcher::class);
            $this->afterCommit(function () use ($dispatcher, $events) {
                foreach ($events as $event) {
                    $dispatcher->dispatch($event);
                }
            });
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

    /**
     * The session the current request started (the web middleware group's
     * StartSession).  `session.store` is bound everywhere, also where no
     * session was started and no cookie will carry it: using it there would
     * lose the token with the response.
     */
    private function session(): Session
    {
        $request = $this->app->bound('request') ? $this->app->make('request') : null;
        if ($request !== null && method_exists($request, 'hasSession') && $request->hasSession()) {
            $session = $request->session();
            if ($session->isStarted()) {
                return $session;
            }
        }
        $where = $request === null || $this->app->runningInConsole() && ! $request->hasSession()
            ? 'the console (an Artisan command, a queued job, a scheduled task)'
            : sprintf('this request (%s /%s)', $request->getMethod(), ltrim($request->path(), '/'));

        throw MissingCheckoutToken::forCall($where);
    }

    private static function phaseNamed(string $name, int $lockId): Phase
    {
        $phase = Phase::tryFrom($name);
        if ($phase === null) {
            $message = sprintf('until must be one of %s; got %s', implode(', ', array_column(Phase::cases(), 'value')),
                json_encode($name, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE));
            throw new InvalidInput($message, '22023', $lockId, errors: ['until' => [$message]]);
        }

        return $phase;
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
