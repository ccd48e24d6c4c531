<?php

namespace Checkout\Laravel\Exceptions;

use Checkout\Laravel\Phase;
use Illuminate\Database\QueryException;
use Illuminate\Http\JsonResponse;
use PDOException;
use RuntimeException;
use Throwable;

/**
 * An error the checkout extension raised: the call changed nothing.  One
 * subclass per SQLSTATE the extension raises, each with the HTTP status a
 * controller would answer.  Business failures (KC010-KC015) are not
 * exceptions: they come back as a CheckoutStatus in state failed.
 */
class CheckoutException extends RuntimeException
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

    final public function __construct(
        string $message,
        public readonly string $sqlState,
        public readonly ?int $lockId = null,
        public readonly ?Phase $phase = null,
        public readonly ?string $detail = null,
        ?Throwable $previous = null,
    ) {
        parent::__construct($message, 0, $previous);
    }

    /**
     * The exception for a database error the extension raised, or null when
     * the SQLSTATE is not one of its (a privilege or connection problem stays
     * the QueryException it was).  `$lockId` and `$phase` are the call's
     * context; the server's message fills them in when it names them.
     */
    public static function fromQueryException(QueryException|PDOException $e, ?int $lockId = null, ?Phase $phase = null): ?self
    {
        $info = $e->errorInfo ?? null;
        $sqlState = is_array($info) && isset($info[0]) ? (string) $info[0] : (string) $e->getCode();
        $class = self::CLASSES[$sqlState] ?? null;
        if ($class === null) {
            return null;
        }
        [$message, $detail] = self::serverMessage(is_array($info) && isset($info[2]) ? (string) $info[2] : $e->getMessage());
        if (preg_match('/\bphase ([a-z_]+) requires\b/', $message, $m)) {
            $phase = Phase::tryFrom($m[1]) ?? $phase;
        }
        if ($lockId === null && preg_match('/\bcheckout lock (\d+)\b/', $message, $m)) {
            $lockId = (int) $m[1];
        }
        // The PDOException, not the QueryException: the latter's message holds
        // the SQL with its bindings, the session token among them.
        $previous = $e instanceof QueryException ? ($e->getPrevious() ?? null) : $e;

        return new $class($message, $sqlState, $lockId, $phase, $detail, $previous);
    }

    /** The HTTP status a controller answers with. */
    public function httpStatus(): int
    {
        return static::HTTP_STATUS;
    }

    /** Laravel calls this to turn an uncaught exception into a response. */
    public function render($request = null): JsonResponse
    {
        return new JsonResponse(array_filter([
            'message' => $this->getMessage(),
            'code' => $this->sqlState,
            'lock_id' => $this->lockId,
            'phase' => $this->phase?->value,
        ], fn ($v) => $v !== null), $this->httpStatus());
    }

    /** Laravel adds this to the log entry of a reported exception. */
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
