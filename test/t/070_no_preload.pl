# Without shared_preload_libraries (issue 8): the README promises the SQL API
# works without the background worker.  Asserts on a cluster that does not
# preload checkout:
#  - LOAD 'checkout' and CREATE EXTENSION checkout leave the session alive
#    (0.1.0: FATAL "cannot create PGC_POSTMASTER variables after startup");
#  - CREATE EXTENSION says, in a WARNING, that no background worker runs
#    (CREATE EXTENSION hides the notices of its script);
#  - checkout.database is not defined then, the other settings are, and a
#    misspelt checkout.* setting is refused;
#  - the demo flow works: start, advance, authorise, capture to stock_commit,
#    cancel with its stock released, an overdue lock shown as expired by
#    checkout_status and expired by checkout_cleanup_expired;
#  - checkout_verify() reports a lock more than 5 minutes overdue with a
#    detail saying that no sweeper runs for this database.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
$node->start;
is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), '', 'checkout is not preloaded');

my ($rc, $out, $err) = $node->psql('postgres', q{LOAD 'checkout'; SELECT 'still connected'});
is($out, 'still connected', "LOAD 'checkout' leaves the session alive");
unlike($err, qr/FATAL|server closed the connection/, '... without a FATAL');

($rc, $out, $err) = $node->psql('postgres',
	q{CREATE EXTENSION checkout; SELECT extname FROM pg_extension WHERE extname = 'checkout'});
is($out, 'checkout', 'CREATE EXTENSION checkout works and leaves the session alive');
unlike($err, qr/FATAL|server closed the connection/, '... without a FATAL');
like($err, qr/WARNING:  [^\n]*background worker/i, '... and a WARNING says no background worker runs');
note("CREATE EXTENSION said: $err");
($rc, $out, $err) = $node->psql('postgres', q{LOAD 'checkout'; SELECT current_setting('checkout.database', true) IS NULL});
is($out, 't', 'checkout.database is not defined without preload');
is($node->safe_psql('postgres', q{LOAD 'checkout'; SHOW checkout.cleanup_interval}), '5min',
	'the other settings are defined');
($rc, $out, $err) = $node->psql('postgres', q{LOAD 'checkout'; SET checkout.no_such_setting = 1;});
like($err, qr/invalid configuration parameter name "checkout.no_such_setting"/,
	'the checkout. prefix is still reserved: a misspelt setting is refused');

sub sql { return $node->safe_psql('postgres', $_[0]); }
my $one = q{'[{"line_id":"1","sku":"NP-1","quantity":2,"unit_price":500}]'};
my $lock;
eval {
	sql(q{INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('NP-1', 10, 500)});

	# the happy path
	$lock = sql("SELECT lock_id FROM checkout_start('np-1', 'np-s', $one)");
	is(sql("SELECT phase FROM checkout_advance($lock, 'np-s', until => 'price_lock')"), 'price_lock', 'advance to price_lock');
	is(sql(qq{SELECT phase FROM checkout_advance($lock, 'np-s', '{"reference":"auth-np","amount":1000}')}),
		'payment_authorization', 'authorise');
	is(sql(qq{SELECT state || ' ' || order_ref FROM checkout_advance($lock, 'np-s', '{"reference":"cap-np","amount":1000}',
		until => 'stock_commit')}), "completed CO-$lock", 'capture to stock_commit: completed');
	is(sql(q{SELECT on_hand || '/' || reserved FROM checkout.inventory WHERE sku = 'NP-1'}), '8/0', 'stock sold');

	# cancel
	$lock = sql("SELECT lock_id FROM checkout_advance((checkout_start('np-2', 'np-s', $one)).lock_id, 'np-s', until => 'inventory_reservation')");
	is(sql(q{SELECT reserved FROM checkout.inventory WHERE sku = 'NP-1'}), '2', 'stock reserved');
	is(sql("SELECT state FROM checkout_cancel($lock, 'np-s')"), 'cancelled', 'cancel');
	is(sql(q{SELECT reserved FROM checkout.inventory WHERE sku = 'NP-1'}), '0', '... releases the stock');

	# an abandoned lock, 10 minutes past its deadline: nobody sweeps it
	$lock = sql("SELECT lock_id FROM checkout_advance((checkout_start('np-3', 'np-s', $one)).lock_id, 'np-s', until => 'inventory_reservation')");
	sql("UPDATE checkout.locks SET created_at = now() - interval '20 minutes', expires_at = now() - interval '10 minutes'
		WHERE lock_id = $lock");
	is(sql("SELECT state FROM checkout_status($lock, 'np-s')"), 'expired', 'checkout_status shows the overdue lock as expired');
	is(sql('SELECT overdue_locks FROM checkout_monitor(24)'), '1', 'checkout_monitor counts it as overdue');
	my $problems = sql('SELECT invariant, subject, detail FROM checkout_verify()');
	like($problems, qr/^active_lock_past_deadline\|$lock\|/m, 'checkout_verify reports it');
	my ($detail) = $problems =~ /^active_lock_past_deadline\|$lock\|(.*)$/m;
	like($detail // '', qr/\bno\b[^.]*\b(?:sweeper|worker)\b/i, '... saying that no sweeper runs');
	like($detail // '', qr/\bthis database\b/i, '... for this database');
	note("checkout_verify said: " . ($detail // ''));
	is(sql('SELECT checkout_cleanup_expired()'), '1', 'checkout_cleanup_expired expires it');
	is(sql("SELECT state || ' ' || error_code FROM checkout.locks WHERE lock_id = $lock"), 'expired KC015', '... as expired');
	is(sql(q{SELECT reserved FROM checkout.inventory WHERE sku = 'NP-1'}), '0', '... and releases its stock');
	is(sql('SELECT count(*) FROM checkout_verify()'), '0', 'checkout_verify is content afterwards');
	1;
} or fail("the SQL API without preload: $@");

$node->stop;
done_testing();
