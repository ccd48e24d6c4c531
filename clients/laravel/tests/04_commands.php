<?php

// The Artisan commands on a known history: checkout:monitor prints
// checkout_monitor as a table (figures equal to SQL's), refuses a bad window;
// checkout:prune-expired expires the overdue locks (batch by batch) and
// prints the count, its old name checkout:cleanup-expired-locks still works
// with a deprecation warning (issue 20, item 11); with the default config
// (no admin_connection) both admin commands say what to set and exit 1
// (item 8); the README's schedule names commands that exist.  No background
// worker sweeps this database.

require __DIR__.'/lib/bootstrap.php';

use Checkout\Laravel\Phase;
use CheckoutTest\Tap;
use CheckoutTest\TestApp;
use CheckoutTest\TestDatabase;
use Illuminate\Support\Facades\Artisan;
use Checkout\Laravel\Facades\Checkout;

$db = new TestDatabase('commands');
$db->stock(['A-1' => [100, 1000], 'SHORT' => [1, 100]]);
$test = new TestApp($db);
$checkout = Checkout::forToken(bin2hex(random_bytes(32)));
$line = fn (string $sku, int $quantity = 1, int $price = 1000) => [['line_id' => '1', 'sku' => $sku, 'quantity' => $quantity, 'unit_price' => $price]];

// 2 completed, 2 failed (KC010 at cart_validation, KC011 at inventory_reservation),
// 1 cancelled, 2 about to be overdue, 1 active
foreach (['done-1', 'done-2'] as $cart) {
    $id = $checkout->start($cart, $line('A-1'))->lockId;
    $checkout->advance($id, ['reference' => "auth-$cart", 'amount' => 1000], Phase::PaymentAuthorization);
    $checkout->advance($id, ['reference' => "cap-$cart", 'amount' => 1000], Phase::StockCommit);
}
$checkout->advance($checkout->start('unknown-sku', $line('NOPE'))->lockId, until: Phase::PriceLock);
$checkout->advance($checkout->start('short', $line('SHORT', 5, 100))->lockId, until: Phase::PriceLock);
$checkout->cancel($checkout->start('cancelled', $line('A-1'))->lockId);
foreach (['abandoned-1', 'abandoned-2'] as $cart) {
    $checkout->advance($checkout->start($cart, $line('A-1', 2), ttl: 1)->lockId, until: Phase::PriceLock);
}
$checkout->advance($checkout->start('open', $line('A-1', 3))->lockId, until: Phase::PriceLock);
usleep(1_200_000);   // the two 1-second locks are now overdue

/** Run an Artisan command: [exit code, output]. */
function artisan(string $command, array $options = []): array
{
    $code = Artisan::call($command, $options);

    return [$code, Artisan::output()];
}

/** The `| figure | value |` rows of the monitor table. */
function figures(string $output): array
{
    preg_match_all('/^\|\s*([a-z0-9_]+)\s*\|\s*(.*?)\s*\|$/m', $output, $m, PREG_SET_ORDER);

    $rows = array_column($m, 2, 1);
    unset($rows['figure']);   // the header

    return $rows;
}

[$code, $out] = artisan('checkout:monitor', ['--hours' => 24]);
Tap::is($code, 0, 'checkout:monitor exits 0');
Tap::like($out, '/^\+-+\+-+\+$/m', 'it prints a console table');
$shown = figures($out);
$sql = $db->super->query('SELECT * FROM checkout_monitor(24)')->fetch();
Tap::is(array_keys($shown), array_keys($sql), 'one row per figure of checkout_monitor, in its order');
Tap::is(array_intersect_key($shown, array_flip(['started', 'completed', 'failed', 'expired', 'cancelled', 'active', 'active_locks', 'overdue_locks', 'units_reserved'])),
    ['started' => '8', 'completed' => '2', 'failed' => '2', 'expired' => '0', 'cancelled' => '1', 'active' => '3',
     'active_locks' => '3', 'overdue_locks' => '2', 'units_reserved' => '7'], 'counts of the known history');
Tap::is($shown['success_rate'], '40.00 %', 'success rate: 2 completed of 5 finished');
Tap::is([$shown['failures_by_phase'], $shown['failures_by_code']], ['cart_validation 1, inventory_reservation 1', 'KC010 1, KC011 1'],
    'failures by phase and by code');
$same = true;
foreach (['started', 'completed', 'failed', 'cancelled', 'active', 'duration_p50', 'duration_p95', 'duration_max', 'price_drift_warnings', 'units_reserved'] as $figure) {
    $same = $same && $shown[$figure] === (string) $sql[$figure];
}
Tap::ok($same, 'every count and duration shown equals SQL\'s', var_export([$shown, $sql], true));

[$code, $out] = artisan('checkout:monitor', ['--hours' => 0]);
Tap::is($code, 1, 'checkout:monitor --hours=0 fails');
Tap::like($out.Artisan::output(), '/hours must be at least 1/', 'with the extension\'s message');

// item 8: the default config has no admin_connection: the app's role (checkout_app) is used
$test->app['config']->set('checkout.admin_connection', null);
foreach (['checkout:monitor', 'checkout:prune-expired'] as $command) {
    [$code, $out] = artisan($command);
    Tap::is($code, 1, "$command without admin_connection: exit 1, no uncaught exception");
    Tap::like($out, '/needs a database role granted checkout_admin, and the connection "pgsql" has none \(permission denied for function checkout_\w+\)/',
        "$command: says which role and connection");
    Tap::like($out, '/Set CHECKOUT_ADMIN_CONNECTION in \.env/', "$command: says what to set");
}
Tap::is((int) $db->value("SELECT count(*) FROM checkout.locks WHERE state = 'expired'"), 0, 'nothing was expired by the refused prune');
$test->app['config']->set('checkout.admin_connection', 'pgsql');
Tap::like(artisan('checkout:monitor')[1], '/Grant checkout_admin to the role of the connection "pgsql"/',
    'an admin_connection without the grant: says to grant it');
$test->app['config']->set('checkout.admin_connection', 'admin');

[$code, $out] = artisan('checkout:prune-expired', ['--batch' => 1]);
Tap::is([$code, trim($out)], [0, 'Expired 2 checkout locks.'], 'prune-expired expires the two overdue locks, one batch of 1 at a time');
Tap::is($db->value("SELECT string_agg(state::text || ' ' || error_code, ',' ORDER BY cart_id) FROM checkout.locks WHERE cart_id LIKE 'abandoned-%'"),
    'expired KC015,expired KC015', 'they are expired (KC015)');
Tap::is((int) $db->value("SELECT reserved FROM checkout.inventory WHERE sku = 'A-1'"), 3, 'their stock is released');
[$code, $out] = artisan('checkout:cleanup-expired-locks');
Tap::is([$code, $out], [0, "checkout:cleanup-expired-locks is deprecated and will be removed: use checkout:prune-expired.\nExpired 0 checkout locks.\n"],
    'the old name still runs, with a deprecation warning');
$listed = array_keys(Artisan::all());
Tap::ok(in_array('checkout:prune-expired', $listed, true) && in_array('checkout:cleanup-expired-locks', $listed, true),
    'both names are registered');
Tap::ok(Artisan::all()['checkout:cleanup-expired-locks']->isHidden() && ! Artisan::all()['checkout:prune-expired']->isHidden(),
    'the old name is hidden from the command list');

// the README's schedule, in a console kernel's schedule()
$schedule = new \Illuminate\Console\Scheduling\Schedule();
eval(\CheckoutTest\Readme::snippet('schedule'));
$scheduled = array_map(fn ($event) => [preg_replace("/^.*'artisan' /", '', $event->command), $event->expression], $schedule->events());
Tap::is($scheduled, [['checkout:prune-expired', '* * * * *'], ['checkout:dispatch-compensations', '*/5 * * * *']],
    'README schedule: prune every minute, dispatch compensations every five minutes');
Tap::ok(array_diff(array_column($scheduled, 0), $listed) === [], 'README schedule: both commands exist');

$after = figures(artisan('checkout:monitor')[1]);
Tap::is([$after['expired'], $after['overdue_locks'], $after['failures_by_code']], ['2', '0', 'KC010 1, KC011 1, KC015 2'],
    'the monitor sees the expiries (default window 24 hours)');

Tap::done();
