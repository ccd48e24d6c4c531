# kill -9 of a backend in the middle of an advance: after crash recovery the
# ledger still equals the held reservations.  A database named in
# checkout.database that is created later is picked up quietly, and the
# sweeper prunes events older than checkout.event_retention.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use CheckoutTest::Node;

my $node = CheckoutTest::Node->start_new('crash',
	settings => {
		'checkout.database'         => 'postgres, latedb',
		'checkout.cleanup_interval' => '5min',
		'checkout.log_destination'  => 'both',
		restart_after_crash         => 'on' },
	stock => [ [ 'K-1', 50, 10 ], [ 'K-2', 50, 10 ] ]);
$node->safe_psql('postgres', q{
	SELECT checkout_advance(s.lock_id, 'sess', until => 'price_lock')
	FROM generate_series(1, 5) g,
	     LATERAL checkout_start('kept-' || g, 'sess', '[{"line_id":"1","sku":"K-1","quantity":2,"unit_price":10},{"line_id":"2","sku":"K-2","quantity":1,"unit_price":10}]') s;
});

my $invariant = q{SELECT count(*) FROM checkout.inventory i
	WHERE i.reserved <> COALESCE((SELECT sum(r.quantity) FROM checkout.reservations r WHERE r.sku = i.sku), 0)};

# a client in the middle of an advance: reservations made, transaction open
my ($in, $out, $err) = ('', '', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $node->connstr('postgres') ],
	\$in, \$out, \$err);
$in .= q{BEGIN;
SELECT checkout_advance(s.lock_id, 'victim', until => 'price_lock')
FROM checkout_start('victim-cart', 'victim', '[{"line_id":"1","sku":"K-1","quantity":7,"unit_price":10}]') s;
SELECT pg_sleep(60);
};
$h->pump_nb;
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()")
  or die 'client did not reach the sleep';
my $pid = $node->query_value(
	"SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()");
kill 'KILL', $pid;
$h->finish;
$node->poll_query_until('postgres', 'SELECT true') or die 'no recovery';

is($node->query_value($invariant), '0', 'after kill -9 mid-advance the ledger equals the held reservations');
is($node->query_value("SELECT reserved FROM checkout.inventory WHERE sku = 'K-1'"), '10',
	'only the committed checkouts hold stock');
is($node->query_value("SELECT count(*) FROM checkout.locks WHERE cart_id = 'victim-cart'"), '0',
	'the killed transaction left no lock');
is($node->query_value(q{SELECT count(*) FROM checkout_verify()}), '0', 'checkout_verify finds nothing');

# the sweeper prunes old events
$node->safe_psql('postgres', "UPDATE checkout.events SET logged_at = now() - interval '8 days' WHERE cart_id LIKE 'kept-%'");
my $old = $node->query_value("SELECT count(*) FROM checkout.events WHERE logged_at < now() - interval '7 days'");
ok($old > 0, "there are $old old events");
$node->safe_psql('postgres', q{SELECT checkout_start('prune-trigger', 'sess', '[{"line_id":"1","sku":"K-2","quantity":1,"unit_price":10}]', interval '1 second')});
ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM checkout.events WHERE logged_at < now() - interval '7 days'"),
	'the sweeper pruned events older than checkout.event_retention');

# a database created later, with the extension, is picked up
my $log_offset = -s $node->logfile;
sleep 2;
$node->safe_psql('postgres', 'CREATE DATABASE latedb');
$node->safe_psql('latedb', 'CREATE EXTENSION checkout');
$node->add_stock('latedb', [ 'L-1', 5, 10 ]);
my $lock = $node->safe_psql('latedb', q{
	SELECT (checkout_advance(s.lock_id, 'sess', until => 'inventory_reservation')).lock_id
	FROM checkout_start('late-cart', 'sess', '[{"line_id":"1","sku":"L-1","quantity":1,"unit_price":10}]', interval '1 second') s});
ok($node->wait_for_state($lock, 'expired', 20, 'latedb'), 'a database created later is swept');
my $log = slurp_file($node->logfile, $log_offset);
my $lines = () = $log =~ /latedb/g;
ok($lines <= 2, "the wait for the database was quiet ($lines log lines name it)");

$node->stop;
done_testing();
