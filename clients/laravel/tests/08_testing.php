<?php

// Issue 20, item 7: testing support.  Checkout::fake() keeps the extension's
// rules in memory, says what each call did (so the events come), and its
// assertions pass and fail as Laravel's fakes do (PHPUnit's Assert).  The
// README's two feature test classes - one with Checkout::fake(), one with
// RefreshCheckout against the real extension - run under PHPUnit with
// Laravel's TestCase; without RefreshCheckout the second test of the class
// fails (the first one's lock holds the cart), which is what the trait fixes.

require __DIR__.'/lib/bootstrap.php';

use Carbon\CarbonImmutable;
use Checkout\Laravel\Events\CheckoutAdvanced;
use Checkout\Laravel\Events\CheckoutCompleted;
use Checkout\Laravel\Events\CheckoutStarted;
use Checkout\Laravel\Exceptions\CheckoutInProgress;
use Checkout\Laravel\Exceptions\LockNotActive;
use Checkout\Laravel\Exceptions\LockNotFound;
use Checkout\Laravel\Exceptions\PayloadRequired;
use Checkout\Laravel\Facades\Checkout;
use Checkout\Laravel\Phase;
use Checkout\Laravel\Testing\CheckoutFake;
use CheckoutTest\Readme;
use CheckoutTest\ShopApp;
use CheckoutTest\Tap;
use CheckoutTest\TestApp;
use CheckoutTest\TestDatabase;
use Illuminate\Support\Facades\Event;
use PHPUnit\Framework\ExpectationFailedException;

$db = new TestDatabase('testing');
$db->shopTables();
$connections = ['pgsql' => $db->laravelConnection(TestDatabase::APP_ROLE), 'pgsql_super' => $db->laravelConnection(getenv('PGUSER') ?: 'postgres'),
    'super' => $db->laravelConnection(getenv('PGUSER') ?: 'postgres')];
$test = new TestApp($db, config: ['database' => ['default' => 'pgsql', 'connections' => $connections]],
    files: ShopApp::files(), providers: ShopApp::providers());

// --- the fake, by hand ----------------------------------------------------------
$fake = Checkout::fake();
Tap::ok($fake instanceof CheckoutFake && $test->app->make(\Checkout\Laravel\Checkout::class) === $fake, 'Checkout::fake() swaps the service in the container');
$seen = [];
Event::listen([CheckoutStarted::class, CheckoutAdvanced::class, CheckoutCompleted::class], function ($e) use (&$seen) {
    $seen[] = class_basename($e);
});
$mine = Checkout::forToken('token-a');
$lines = [['line_id' => '1', 'sku' => 'A-1', 'quantity' => 2, 'unit_price' => 500]];
$started = $mine->start('cart-1', $lines);
Tap::is([$started->lockId, $started->created, $started->nextPhase()], [1, true, Phase::CartValidation], 'fake start: lock 1, created');
Tap::is($mine->start('cart-1', $lines)->created, false, 'fake start again: the same lock, not created');
Tap::throws(fn () => Checkout::forToken('token-b')->start('cart-1', $lines), CheckoutInProgress::class, 'fake: another token on the cart is KC001');
Tap::throws(fn () => Checkout::forToken('token-b')->status(1), LockNotFound::class, 'fake: another token\'s lock is KC002');
$locked = $mine->advance(1, until: 'stock_commit');
Tap::is([$locked->phase, $locked->total, $locked->needsPayment()], [Phase::PriceLock, 1000, true], 'fake: until stops before the payment, total 1000');
Tap::throws(fn () => $mine->advance(1), PayloadRequired::class, 'fake: a payment phase without payload is KC020');
$mismatch = Checkout::forToken('token-c');
$other = $mismatch->advance($mismatch->start('cart-2', $lines)->lockId, ['reference' => 'a', 'amount' => 999], Phase::PaymentAuthorization);
Tap::is([$other->state->value, $other->errorCode, $other->failedPhase, $other->ended], ['failed', 'KC013', Phase::PaymentAuthorization, true],
    'fake: an amount that is not the total fails KC013');
$mine->advance(1, ['reference' => 'auth', 'amount' => 1000], Phase::OrderCreation);
$done = $mine->advance(1, ['reference' => 'cap', 'amount' => 1000], Phase::StockCommit);
Tap::is([$done->isCompleted(), $done->orderRef, $done->phasesRun], [true, 'CO-1', [Phase::PaymentCapture, Phase::StockCommit]], 'fake: completed');
Tap::is($mine->advance(1, ['reference' => 'cap', 'amount' => 1000], Phase::PaymentCapture)->isDuplicate(), true, 'fake: a retried capture is a duplicate');
Tap::throws(fn () => $mine->advance(1), LockNotActive::class, 'fake: advancing a completed lock without until is KC004');
Tap::is($seen, ['CheckoutStarted', 'CheckoutAdvanced', 'CheckoutStarted', 'CheckoutAdvanced', 'CheckoutAdvanced', 'CheckoutAdvanced', 'CheckoutCompleted'],
    'fake: the same events as the service');
$expiring = $mine->start('cart-3', $lines, ttl: 60);
CarbonImmutable::setTestNow(CarbonImmutable::now()->addMinutes(2));
\Carbon\Carbon::setTestNow(\Carbon\Carbon::now()->addMinutes(2));
Tap::is($mine->status($expiring->lockId)->state->value, 'expired', 'fake: past the deadline (Carbon\'s clock) the status shows expired');
$touched = $mine->extend($expiring->lockId, 60);
Tap::is([$touched->state->value, $touched->ended], ['expired', true], 'fake: touching it expires it');
CarbonImmutable::setTestNow();
\Carbon\Carbon::setTestNow();

Checkout::assertStarted('cart-1');
Checkout::assertStarted('cart-1', fn ($status, $lines) => $lines[0]['quantity'] === 2);
$fake->assertAdvanced(1, Phase::PaymentCapture);
$fake->assertCompleted(1);
$fake->assertFailed(2, 'KC013');
$fake->assertNotStarted('cart-9');
Tap::ok(true, 'the assertions that hold pass');
$failing = [
    'assertStarted(cart-9)' => fn () => Checkout::assertStarted('cart-9'),
    'assertStarted with a callback that does not match' => fn () => Checkout::assertStarted('cart-1', fn ($s, $l) => $l[0]['quantity'] === 3),
    'assertNotStarted(cart-1)' => fn () => Checkout::assertNotStarted('cart-1'),
    'assertNothingStarted()' => fn () => Checkout::assertNothingStarted(),
    'assertAdvanced(3)' => fn () => Checkout::assertAdvanced(3),
    'assertCancelled(1)' => fn () => Checkout::assertCancelled(1),
    'assertFailed(2, KC011)' => fn () => Checkout::assertFailed(2, 'KC011'),
    'assertExtended(1)' => fn () => Checkout::assertExtended(1),
];
foreach ($failing as $what => $assertion) {
    Tap::throws($assertion, ExpectationFailedException::class, "$what fails as a PHPUnit assertion");
}

// --- the README's feature tests, under PHPUnit -----------------------------------
$base = $test->basePath;
$test->writeFile('tests/TestCase.php', <<<'PHP'
    <?php

    namespace Tests;

    use Illuminate\Support\Facades\DB;

    abstract class TestCase extends \Illuminate\Foundation\Testing\TestCase
    {
        public function createApplication()
        {
            return \CheckoutTest\TestApp::boot(getenv('CHECKOUT_TEST_APP'), console: true);
        }

        protected function setUp(): void
        {
            parent::setUp();
            DB::connection('pgsql_super')->statement('truncate cart_lines');
        }
    }
    PHP);
$test->writeFile('tests/bootstrap.php', "<?php\nrequire '".__DIR__."/lib/autoload.php';\n"
    ."spl_autoload_register(function (\$c) { if (str_starts_with(\$c, 'Tests\\\\')) require __DIR__.'/'.str_replace('\\\\', '/', substr(\$c, 6)).'.php'; });\n");
$test->writeFile('tests/Feature/CheckoutFakeTest.php', Readme::snippet('test-fake'));
$test->writeFile('tests/Feature/CheckoutDatabaseTest.php', Readme::snippet('test-refresh'));
// the control: the same class with the trait's refresh turned off
$test->writeFile('tests/Control/CheckoutDatabaseTest.php', str_replace(['namespace Tests\Feature;', "    use RefreshCheckout;\n"],
    ['namespace Tests\Control;', "    use RefreshCheckout;\n\n    protected function refreshCheckout(): void\n    {\n    }\n"], Readme::snippet('test-refresh')));
$db->super->exec('CREATE EXTENSION IF NOT EXISTS checkout');   // made by TestDatabase; RefreshCheckout makes sure too
$db->super->exec("INSERT INTO checkout.inventory VALUES ('LEFTOVER', 1, 0, 1)");   // a previous run's data the trait must clear

/** Run phpunit on `$dir` of the application: [exit code, testcase name => failure text or '' when it passed]. */
$phpunit = function (string $dir) use ($base): array {
    $junit = "$base/storage/junit-".basename($dir).'.xml';
    $process = proc_open(['phpunit', '--bootstrap', "$base/tests/bootstrap.php", '--log-junit', $junit, '--colors=never', "$base/tests/$dir"],
        [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, $base, getenv() + ['CHECKOUT_TEST_APP' => $base]);
    $output = stream_get_contents($pipes[1]).stream_get_contents($pipes[2]);
    $code = proc_close($process);
    $results = [];
    foreach (is_file($junit) ? simplexml_load_file($junit)->xpath('//testcase') : [] as $case) {
        $results[(string) $case['class'].'::'.(string) $case['name']] = trim((string) ($case->failure ?? $case->error ?? ''));
    }
    if ($results === []) {
        Tap::diag($output);
    }

    return [$code, $results];
};

[$code, $results] = $phpunit('Feature');
Tap::is($code, 0, 'phpunit on the README\'s feature tests exits 0');
foreach (['CheckoutFakeTest::test_checkout_reserves_and_pays', 'CheckoutFakeTest::test_out_of_stock_is_a_returned_failure',
          'CheckoutDatabaseTest::test_a_checkout_holds_stock', 'CheckoutDatabaseTest::test_the_next_test_starts_clean'] as $name) {
    Tap::is($results["Tests\\Feature\\$name"] ?? 'did not run', '', "README test $name passes");
}
Tap::is((int) $db->value("SELECT count(*) FROM checkout.inventory WHERE sku = 'LEFTOVER'"), 0, 'RefreshCheckout emptied the inventory');
Tap::is((int) $db->value("SELECT count(*) FROM checkout.locks"), 0, '... and the locks, also after the last test');

[$code, $results] = $phpunit('Control');
Tap::ok($code !== 0 && ($results['Tests\\Control\\CheckoutDatabaseTest::test_a_checkout_holds_stock'] ?? 'x') === ''
    && str_contains($results['Tests\\Control\\CheckoutDatabaseTest::test_the_next_test_starts_clean'] ?? '', 'cart "c-1" is locked by a checkout in progress'),
    'control: without RefreshCheckout the second test meets the first one\'s lock (KC030 on its cart row)', var_export($results, true));

Tap::done();
