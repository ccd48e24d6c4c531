<?php

// Issue 20, item 10: composer.json admits Laravel 8 to 12 (every illuminate/*
// requirement) and PHP from 8.1; the package's code and the README's PHP
// use nothing that needs PHP 8.2 (readonly classes, true/false/null as
// standalone types, DNF types, constants in traits, 8.2's new functions and
// classes).  The check finds each of those in samples, the old
// `final readonly class CheckoutStatus` among them.

require __DIR__.'/lib/bootstrap.php';

use CheckoutTest\Readme;
use CheckoutTest\Tap;

$composer = json_decode(file_get_contents(__DIR__.'/../composer.json'), true, flags: JSON_THROW_ON_ERROR);
Tap::is($composer['require']['php'] ?? null, '^8.1', 'composer: php ^8.1');
$illuminate = array_filter($composer['require'], fn ($package) => str_starts_with($package, 'illuminate/'), ARRAY_FILTER_USE_KEY);
Tap::ok(count($illuminate) >= 5, 'composer: the illuminate packages used are required ('.implode(', ', array_keys($illuminate)).')');
Tap::is(array_unique(array_values($illuminate)), ['^8.83 || ^9.0 || ^10.0 || ^11.0 || ^12.0'], 'composer: each admits Laravel 8.83 to 12');
Tap::ok(isset($composer['require']['symfony/http-kernel']), 'composer: symfony/http-kernel, which the exceptions extend, is required');

/** The PHP 8.2 features in `$code`, as "line N: what". */
function php82(string $code): array
{
    $found = [];
    $tokens = token_get_all($code);
    $significant = array_values(array_filter($tokens, fn ($t) => ! is_array($t) || ! in_array($t[0], [T_WHITESPACE, T_COMMENT, T_DOC_COMMENT], true)));
    $inTrait = 0;
    $depth = 0;
    foreach ($significant as $i => $token) {
        $id = is_array($token) ? $token[0] : $token;
        $line = is_array($token) ? $token[2] : 0;
        if ($id === T_READONLY) {
            for ($j = $i + 1; isset($significant[$j]) && is_array($significant[$j]) && in_array($significant[$j][0], [T_FINAL, T_ABSTRACT], true); $j++) {
            }
            if (is_array($significant[$j] ?? null) && $significant[$j][0] === T_CLASS) {
                $found[] = "line $line: readonly class";
            }
        }
        if ($id === T_TRAIT) {
            $inTrait = $depth + 1;
        }
        if ($id === '{' || $id === T_CURLY_OPEN || $id === T_DOLLAR_OPEN_CURLY_BRACES) {
            $depth++;
        } elseif ($id === '}') {
            $depth--;
            if ($depth < $inTrait) {
                $inTrait = 0;
            }
        }
        if ($id === T_CONST && $inTrait && $depth === $inTrait) {
            $found[] = "line $line: constant in a trait";
        }
        if (is_array($token) && $token[0] === T_STRING && in_array(strtolower($token[1]), ['ini_parse_quantity', 'memory_reset_peak_usage',
                'mysqli_execute_query', 'openssl_cipher_key_length', 'curl_upkeep', 'libxml_get_external_entity_loader'], true)) {
            $found[] = "line $line: {$token[1]}() (PHP 8.2)";
        }
        if (is_array($token) && in_array($token[0], [T_NAME_QUALIFIED, T_NAME_FULLY_QUALIFIED], true) && preg_match('/^\\\\?Random\\\\/', $token[1])) {
            $found[] = "line $line: {$token[1]} (PHP 8.2)";
        }
    }
    foreach (explode("\n", $code) as $n => $text) {
        if (! preg_match('/\bfunction\b|\bfn\s*\(/', $text)) {
            continue;   // types are in signatures
        }
        if (preg_match('/\)\s*:\s*\??(true|false|null)\b\s*[{;]/i', $text) || preg_match('/[(,]\s*\??(true|false|null)\s+&?\$\w+/i', $text)) {
            $found[] = 'line '.($n + 1).': true/false/null as a standalone type';
        }
        if (preg_match('/[(:|,]\s*\(\s*\\\\?[\w\\\\]+\s*&/', $text) && preg_match('/\)\s*\|/', $text)) {
            $found[] = 'line '.($n + 1).': a DNF type';
        }
    }

    return $found;
}

// the check finds what it looks for
$samples = [
    'final readonly class CheckoutStatus implements JsonSerializable {}' => 'readonly class',
    'readonly class A {}' => 'readonly class',
    'trait T { const X = 1; }' => 'constant in a trait',
    'function f(): null { return null; }' => 'standalone type',
    'function f(false $x) {}' => 'standalone type',
    'function f((A&B)|null $x) {}' => 'DNF type',
    '$r = new \Random\Randomizer();' => 'Random',
    'ini_parse_quantity("1M");' => 'ini_parse_quantity',
];
foreach ($samples as $sample => $what) {
    $found = php82("<?php\n$sample\n");
    Tap::ok(count(preg_grep('/'.preg_quote($what, '/').'/', $found)) === 1, "the check finds $what in: $sample", implode("\n", $found));
}
Tap::is(php82("<?php\nfinal class A { public function __construct(public readonly int \$a) {} public function f(): ?int { return null; } }\ntrait T { public function g(int|false \$x): bool { return true; } }\nenum E: string { const D = 'x'; case A = 'a'; }\n"), [],
    'PHP 8.1 code (readonly properties, nullable and union types, enum constants) passes');

$files = new RecursiveIteratorIterator(new RecursiveDirectoryIterator(__DIR__.'/../src', FilesystemIterator::SKIP_DOTS));
$all = [];
foreach ($files as $file) {
    foreach (php82(file_get_contents($file->getPathname())) as $problem) {
        $all[] = basename($file->getPathname()).' '.$problem;
    }
}
foreach (glob(__DIR__.'/../database/migrations/*.stub') as $stub) {
    foreach (php82(file_get_contents($stub)) as $problem) {
        $all[] = basename($stub).' '.$problem;
    }
}
Tap::is($all, [], 'src/ and the migration stub need nothing of PHP 8.2');
$readme = [];
foreach (Readme::snippets() as $name => $code) {
    $code = str_starts_with($code, '<?php') ? $code : "<?php\n$code";
    foreach (php82($code) as $problem) {
        $readme[] = "$name $problem";
    }
}
Tap::is($readme, [], 'the README\'s PHP needs nothing of PHP 8.2');

Tap::done();
