<?php

namespace Checkout\Laravel\Exceptions;

use Checkout\Laravel\Phase;
use Illuminate\Database\QueryException;
use Illuminate\Http\JsonResponse;
use PDOException;
use Symfony\Component\HttpKernel\Exception\HttpException;
use Throwable;

/**
 * An error the checkout extension raised: the call changed nothing.  One
 * subclass per SQLSTATE the extension raises, each with the HTTP status a
 * controller would answer.  Business failures (KC010-KC015) are not
 * exceptions: they come back as a CheckoutStatus in state failed.
 *
 * Each is a client error, so it is an HttpException, as Laravel's own
 * abort(404) is: the exception handler does not report it to the log, and
 * when left uncaught it renders with its status - as the JSON body
 * {message, code, phase, errors?} when the request expects JSON, else as
 * Laravel renders any HTTP error (resources/views/errors/409.blade.php, ...).
 */
class CheckoutException extends HttpException
{
    /** SQLSTATE => subclass */
    private const CLASSES = [
        'KC001' => CheckoutInProgress::class,
        'KC002' => LockNotFound::class,
        'KC004' => LockNotActive::class,
        'KC020' => PayloadRequired::class,
        'KC030' => CartLocked::class,
        '22023' => InvalidInput::class,  // invalid_parameter_value: bad lines, ttl, NULLs, lengths
        '22003' => InvalidInput::class,  // numeric_value_out_of_range: a cart total beyond bigint
    ];

    protected const HTTP_STATUS = 500;

    /**
     * @param  array<string, list<string>>  $errors  for a 422: input field => messages, as a ValidationException has
     */
    final public function __construct(
        string $message,
        public readonly string $sqlState,
        public readonly ?int $lockId = null,
        public readonly ?Phase $phase = null,
        public readonly ?string $detail = null,
        ?Throwable $previous = null,
        public readonly array $errors = [],
        array $headers = [],
    ) {
        parent::__construct(static::HTTP_STATUS, $message, $previous, $headers);
    }

    /**
     * The exception for a database error the extension raised, or null when
     * the SQLSTATE is not one of its (a privilege or connection problem stays
     * the QueryException it was).  `$lockId` and `$phase` are the call's
     * context (`$phase`: the phase that refused the call, when the caller
     * knows it); the server's message fills them in when it names them.
     * `$field` names the call's input a 422 is about when the message does
     * not; `$payload` lets a malformed payment payload name its bad keys.
     */
    public static function fromQueryException(QueryException|PDOException $e, ?int $lockId = null, ?Phase $phase = null,
        ?string $field = null, array $payload = []): ?self
    {
        $sqlState = self::sqlStateOf($e);
        $class = self::CLASSES[$sqlState] ?? null;
        if ($class === null) {
            return null;
        }
        $info = $e->errorInfo ?? null;
        [$message, $detail] = self::serverMessage(is_array($info) && isset($info[2]) ? (string) $info[2] : $e->getMessage());
        if (preg_match('/\bphase ([a-z_]+) requires\b/', $message, $m)) {
            $phase = Phase::tryFrom($m[1]) ?? $phase;
        }
        if ($lockId === null && preg_match('/\bcheckout lock (\d+)\b/i', $message.' '.$detail, $m)) {
            $lockId = (int) $m[1];
        }
        $errors = $class::HTTP_STATUS === 422 ? self::fieldErrors($message, $field, $payload) : [];
        // The PDOException, not the QueryException: the latter's message holds
        // the SQL with its bindings, the session token among them.
        $previous = $e instanceof QueryException ? ($e->getPrevious() ?? null) : $e;

        return new $class($message, $sqlState, $lockId, $phase, $detail, $previous, $errors);
    }

    /** The SQLSTATE of a database error ('' when it has none). */
    public static function sqlStateOf(Throwable $e): string
    {
        $info = $e instanceof PDOException || $e instanceof QueryException ? $e->errorInfo : null;

        return is_array($info) && isset($info[0]) ? (string) $info[0] : (string) $e->getCode();
    }

    /** The server's primary message of a database error, without the SQL and bindings Laravel adds. */
    public static function serverMessageOf(QueryException|PDOException $e): string
    {
        $info = $e->errorInfo ?? null;

        return self::serverMessage(is_array($info) && isset($info[2]) ? (string) $info[2] : $e->getMessage())[0];
    }

    /** The HTTP status a controller answers with (getStatusCode() too). */
    public function httpStatus(): int
    {
        return $this->getStatusCode();
    }

    /** The body of every client error of the package: {message, code, phase, errors?}. */
    public function toArray(): array
    {
        $body = ['message' => $this->getMessage(), 'code' => $this->sqlState, 'phase' => $this->phase?->value];
        if ($this->getStatusCode() === 422) {
            $body['errors'] = (object) $this->errors;
        }

        return $body;
    }

    /** The JSON response, whatever the request accepts (for a controller that answers JSON itself). */
    public function toJsonResponse(): JsonResponse
    {
        return new JsonResponse($this->toArray(), $this->getStatusCode(), $this->getHeaders());
    }

    /**
     * Laravel's handler calls this for an uncaught exception: JSON when the
     * request expects it; otherwise null, and the handler renders the HTTP
     * error page for the status, as for abort().
     */
    public function render($request = null): ?JsonResponse
    {
        return $request !== null && method_exists($request, 'expectsJson') && $request->expectsJson()
            ? $this->toJsonResponse() : null;
    }

    /** Laravel adds this to the log entry, should the application report one itself. */
    public function context(): array
    {
        return array_filter([
            'sqlstate' => $this->sqlState,
            'lock_id' => $this->lockId,
            'phase' => $this->phase?->value,
            'detail' => $this->detail,
        ], fn ($v) => $v !== null);
    }

    /**
     * Which input a 422 is about, as Laravel's validation errors name it
     * (field => [message]); the server's message names the argument.
     */
    private static function fieldErrors(string $message, ?string $field, array $payload): array
    {
        $keys = match (true) {
            (bool) preg_match('/^invalid cart line (\d+)\b/', $message, $m) => ['lines.'.((int) $m[1] - 1)],
            (bool) preg_match('/^(cart |total quantity of sku|.*out of range)/', $message) => ['lines'],
            (bool) preg_match('/^idempotency key /', $message) => ['idempotency_key'],
            (bool) preg_match('/^(cart_id|ttl|idempotency_key|by|reason|until) (must|is)\b/', $message, $m) => [$m[1]],
            (bool) preg_match('/^session_id (must|is)\b/', $message) => ['token'],
            $message === 'malformed payment payload' => self::badPaymentKeys($payload),
            str_starts_with($message, 'payment metadata') => ['payload.metadata'],
            str_starts_with($message, 'malformed order payload'), str_starts_with($message, 'order_ref ') => ['payload.order_ref'],
            default => [$field ?? 'input'],
        };

        return array_fill_keys($keys, [$message]);
    }

    private static function badPaymentKeys(array $payload): array
    {
        $keys = [];
        if (! is_string($payload['reference'] ?? null) || $payload['reference'] === '') {
            $keys[] = 'payload.reference';
        }
        if (! is_int($payload['amount'] ?? null) || $payload['amount'] < 0) {
            $keys[] = 'payload.amount';
        }

        return $keys === [] ? ['payload'] : $keys;
    }

    /**
     * The primary message and DETAIL of libpq's error text
     * ("ERROR:  message\nDETAIL:  ...\nHINT:  ...").
     */
    private static function serverMessage(string $text): array
    {
        $text = preg_replace('/^SQLSTATE\[\w+\]:[^:]*:\s*\d+\s*/', '', $text);
        $parts = preg_split('/\n(?=[A-Z]+:  )/', $text);
        $message = preg_replace('/^[A-Z]+:  /', '', array_shift($parts));
        $detail = null;
        foreach ($parts as $part) {
            if (str_starts_with($part, 'DETAIL:  ')) {
                $detail = substr($part, strlen('DETAIL:  '));
            }
        }

        return [trim($message), $detail === null ? null : trim($detail)];
    }
}
