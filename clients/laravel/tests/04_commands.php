<?php

// The Artisan commands on a known history: checkout:monitor prints
// checkout_monitor as a table (figures equal to SQL's), refuses a bad window;
// checkout:cleanup-expired-locks expires the overdue locks (batch by batch)
// and prints the count.  No background worker sweeps this database.

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

[$code, $out] = artisan('checkout:cleanup-expired-locks', ['--batch' => 1]);
Tap::is([$code, trim($out)], [0, 'Expired 2 checkout locks.'], 'cleanup expires the two overdue locks, one batch of 1 at a time');
Tap::is($db->value("SELECT string_agg(state::text || ' ' || error_code, ',' ORDER BY cart_id) FROM checkout.locks WHERE cart_id LIKE 'abandoned-%'"),
    'expired KC015,expired KC015', 'they are expired (KC015)');
Tap::is((int) $db->value("SELECT reserved FROM checkout.inventory WHERE sku = 'A-1'"), 3, 'their stock is released');
[$code, $out] = artisan('checkout:cleanup-expired-locks');
Tap::is([$code, trim($out)], [0, 'Expired 0 checkout locks.'], 'nothing left to expire');

$after = figures(artisan('checkout:monitor')[1]);
Tap::is([$after['expired'], $after['overdue_locks'], $after['failures_by_code']], ['2', '0', 'KC010 1, KC011 1, KC015 2'],
    'the monitor sees the expiries (default window 24 hours)');

Tap::done();
