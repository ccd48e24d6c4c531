<?php

namespace CheckoutTest;

use RuntimeException;

/**
 * The code blocks of clients/laravel/README.md, by the name in the
 * `<!-- snippet: NAME -->` line right above each.  10_readme_app.php checks
 * that every block has a name and that some test runs each name.
 */
final class Readme
{
    public const PATH = __DIR__.'/../../README.md';

    /** name => code */
    public static function snippets(): array
    {
        preg_match_all('/^<!-- snippet: ([a-z0-9-]+) -->\n```[a-z]*\n(.*?)^```$/ms', (string) file_get_contents(self::PATH), $m, PREG_SET_ORDER);

        return array_column(array_map(fn ($match) => [$match[1], $match[2]], $m), 1, 0);
    }

    public static function snippet(string $name): string
    {
        return self::snippets()[$name] ?? throw new RuntimeException("README has no snippet \"$name\"");
    }

    /** The number of fenced code blocks in the README, named or not. */
    public static function codeBlocks(): int
    {
        return intdiv(preg_match_all('/^```/m', (string) file_get_contents(self::PATH)), 2);
    }
}
