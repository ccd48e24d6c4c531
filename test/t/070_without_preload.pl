# Without shared_preload_libraries the SQL API works and nothing ends the
# session: LOAD 'checkout' and CREATE EXTENSION checkout used to be FATAL
# ("cannot create PGC_POSTMASTER variables after startup", from
# checkout.database).  No worker runs, checkout.database is not defined,
# creating a lock (which posts its deadline to the worker) is harmless, and
# checkout_cleanup_expired() is what expires locks.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nopreload');
$node->init;
# a leftover setting from a preloaded past must not break a late load either
$node->append_conf('postgresql.conf', q{
checkout.database = 'postgres'
checkout.cleanup_interval = '1s'
});
$node->start;

# one session: LOAD, then the same session goes on
my ($rc, $out, $err) = $node->psql('postgres', q{LOAD 'checkout'; SELECT 'still here';});
is($rc, 0, 'LOAD checkout succeeds without preload');
is($out, 'still here', 'the session survives LOAD');
unlike($err, qr/FATAL/, 'no FATAL from LOAD');

($rc, $out, $err) = $node->psql('postgres', q{
	CREATE EXTENSION checkout;
	SELECT extversion IS NOT NULL FROM pg_extension WHERE extname = 'checkout';});
is($rc, 0, 'CREATE EXTENSION checkout succeeds without preload');
is($out, 't', 'the session survives CREATE EXTENSION');
unlike($err, qr/FATAL/, 'no FATAL from CREATE EXTENSION');

($rc, $out, $err) = $node->psql('postgres', q{LOAD 'checkout'; SHOW checkout.database;});
like($err, qr/unrecognized configuration parameter "checkout.database"/,
	'checkout.database is not defined without preload');
is($node->safe_psql('postgres', q{LOAD 'checkout'; SHOW checkout.cleanup_interval}), '1s',
	'the other settings are defined');
($rc, $out, $err) = $node->psql('postgres', q{LOAD 'checkout'; SET checkout.no_such_setting = 1;});
like($err, qr/invalid configuration parameter name "checkout.no_such_setting"/,
	'the checkout. prefix is still reserved: a misspelt setting is refused');

# the example session, all through
$node->safe_psql('postgres', q{
	INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('A-1', 10, 1000), ('B-2', 5, 250);});
my $lock = $node->safe_psql('postgres', q{
	SELECT lock_id FROM checkout_start('cart-1', 'sess-1',
	  '[{"line_id":"1","sku":"A-1","quantity":2,"unit_price":1000},
	    {"line_id":"2","sku":"B-2","quantity":1,"unit_price":250}]')});
is($node->safe_psql('postgres', qq{
	SELECT state || ' ' || phase || ' ' || total FROM checkout_advance($lock, 'sess-1', until => 'price_lock')}),
	'active price_lock 2250', 'validated, reserved, prices locked');
is($node->safe_psql('postgres', qq{
	SELECT state || ' ' || phase FROM checkout_advance($lock, 'sess-1', '{"reference":"auth_42","amount":2250}')}),
	'active payment_authorization', 'payment authorized');
is($node->safe_psql('postgres', qq{
	SELECT state || ' ' || phase || ' ' || (order_ref IS NOT NULL)
	FROM checkout_advance($lock, 'sess-1', '{"reference":"cap_42","amount":2250}', until => 'stock_commit')}),
	'completed stock_commit true', 'the checkout completes');
is($node->safe_psql('postgres', q{SELECT on_hand || ' ' || reserved FROM checkout.inventory WHERE sku = 'A-1'}),
	'8 0', 'the stock is sold');

# no worker: a short lock stays active until someone expires it
my $short = $node->safe_psql('postgres', q{
	SELECT (checkout_advance(s.lock_id, 'sess-2', until => 'inventory_reservation')).lock_id
	FROM checkout_start('cart-2', 'sess-2', '[{"line_id":"1","sku":"B-2","quantity":1,"unit_price":250}]', interval '1 second') s});
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'checkout%'}), '0',
	'no background worker runs');
sleep 3;
is($node->safe_psql('postgres', "SELECT state FROM checkout.locks WHERE lock_id = $short"), 'active',
	'nothing sweeps in the background');
is($node->safe_psql('postgres', 'SELECT checkout_cleanup_expired()'), '1', 'checkout_cleanup_expired expires it');
is($node->safe_psql('postgres', "SELECT state || ' ' || reserved FROM checkout.locks, checkout.inventory WHERE lock_id = $short AND sku = 'B-2'"),
	'expired 0', 'and releases its stock');

$node->stop;
done_testing();
