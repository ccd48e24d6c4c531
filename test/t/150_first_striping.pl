# The first sku striped while a reservation waits for the striping (issue
# 22).  With no sku striped, a call that reserves (and goes no further than
# price_lock) decides from the stock rows as read and locks them last; a
# sku striped meanwhile must make it decide again with the rows taken in
# order.  Here checkout_stripe is in flight (its transaction open) when the
# call comes: the call waits for it and must then reserve from the stripes,
# its own (lock_id % 4 + 1), without the server restarting.
# A TAP test, on a node of its own, not an isolation spec: on the build that
# fails it, the backend dies (SIGSEGV: run_inventory_reservation formats the
# refusal of a late reservation with the NULL sku stock_reserve leaves when
# it meets a striped sku) and every session of the server is reset, which
# would fail the isolation specs that come after it too.  The fix: in
# run_inventory_reservation, `if (shortfall.sku == NULL) return false;`
# after stock_reserve (late: decided again with the rows locked).
use strict;
use warnings;
use CheckoutTest::Node;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;

my $node = CheckoutTest::Node->start_new('first_striping',
	settings => { restart_after_crash => 'on' },
	stock    => [ [ 'SF-1', 12, 100 ] ]);

# psql running SQL in the background; returns the harness and its output
sub background
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-At', '-d', $node->connstr('postgres'), '-c', $sql ],
		'>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

for my $case ([ 'inventory_reservation', 2 ], [ 'price_lock', 3 ])
{
	my ($until, $quantity) = @$case;
	my $log_offset = -s $node->logfile;
	# a fresh lock, the sku not striped: no backend sees any sku striped
	$node->safe_psql('postgres', q{SELECT checkout_stripe('SF-1', 1)});
	my $lock = $node->query_value(qq{SELECT lock_id FROM checkout_start('cart-$until', 's-$until',
		'[{"line_id":"1","sku":"SF-1","quantity":$quantity,"unit_price":100}]')});
	my $stripe = $lock % 4 + 1;

	# the striping holds its stock lock for 4 s
	my ($striping) = background(q{BEGIN; SELECT checkout_stripe('SF-1', 4); SELECT pg_sleep(4); COMMIT;});
	$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_locks
		WHERE relation = 'checkout.inventory_stripes'::regclass AND mode = 'ShareRowExclusiveLock' AND granted})
	  or die 'the striping did not take its lock';
	my ($call, $out, $err) = background(qq{SELECT state, phase, error_code FROM checkout_advance($lock, 's-$until', until => '$until')});
	ok($node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_locks
		WHERE relation = 'checkout.inventory_stripes'::regclass AND mode = 'RowExclusiveLock' AND NOT granted}),
		"until $until: the call waits for the striping");
	$striping->finish;
	$call->finish;
	chomp $$out;

	is($$out, "active|$until|", "until $until: the call reserves once the sku is striped")
	  or diag($$err);
	unlike(slurp_file($node->logfile, $log_offset), qr/terminated by signal|terminating any other active server processes/,
		"until $until: no backend died, no session was reset");
	$node->poll_query_until('postgres', 'SELECT true') or die 'the server is not back';
	is($node->query_value("SELECT string_agg(sku || ' stripe ' || stripe || ': ' || quantity, ', ')
		FROM checkout.reservations WHERE lock_id = $lock"), "SF-1 stripe $stripe: $quantity",
		"until $until: lock $lock holds $quantity in its own stripe ($stripe)");
	is($node->query_value('SELECT count(*) FROM checkout_verify()'), '0', "until $until: checkout_verify() empty");
	$node->safe_psql('postgres', "SELECT checkout_cancel($lock, 's-$until')");
}

$node->stop;
done_testing();
