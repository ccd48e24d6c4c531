<?php

namespace CheckoutTest;

use Throwable;

/** A small TAP producer for prove: ok/is/like/throws, then done() prints the plan and exits. */
final class Tap
{
    private static int $count = 0;
    private static int $failed = 0;

    public static function ok(bool $passed, string $name, string $diagnostic = ''): bool
    {
        self::$count++;
        echo ($passed ? 'ok ' : 'not ok ').self::$count.' - '.str_replace("\n", ' ', $name)."\n";
        if (! $passed) {
            self::$failed++;
            self::diag("Failed test '$name'".($diagnostic === '' ? '' : "\n$diagnostic"));
        }

        return $passed;
    }

    public static function is(mixed $got, mixed $expected, string $name): bool
    {
        return self::ok($got === $expected, $name,
            '     got: '.var_export($got, true)."\nexpected: ".var_export($expected, true));
    }

    public static function like(string $got, string $pattern, string $name): bool
    {
        return self::ok(preg_match($pattern, $got) === 1, $name, "     got: $got\n    like: $pattern");
    }

    /** Runs `$fn`, passes when it throws a `$class`; returns what it threw. */
    public static function throws(callable $fn, string $class, string $name): ?Throwable
    {
        try {
            $fn();
        } catch (Throwable $e) {
            self::ok($e instanceof $class, $name, 'threw '.get_class($e).': '.$e->getMessage());

            return $e;
        }
        self::ok(false, $name, "threw nothing, expected $class");

        return null;
    }

    public static function diag(string $message): void
    {
        fwrite(STDERR, preg_replace('/^/m', '# ', $message)."\n");
    }

    public static function note(string $message): void
    {
        echo preg_replace('/^/m', '# ', $message)."\n";
    }

    public static function done(): never
    {
        echo '1..'.self::$count."\n";
        exit(min(self::$failed, 254));
    }

    /** An uncaught exception ends the file: report it and fail. */
    public static function bailOnUncaught(): void
    {
        set_exception_handler(function (Throwable $e) {
            self::ok(false, 'no uncaught exception', get_class($e).': '.$e->getMessage()."\n".$e->getTraceAsString());
            echo '1..'.self::$count."\n";
            exit(255);
        });
    }
}
