# Backup and restore.  pg_dump of a database holding checkouts in every
# state (active in each phase, completed, failed, expired, cancelled, with
# compensations), pg_restore into a new cluster with the extension preloaded:
# every row comes back as it was, the restored locks go on (advance, cancel,
# expiry and roll-forward by the worker, which learns the restored deadlines
# by itself), identity sequences do not hand out used ids, checkout_verify()
# is empty.  Then a pg_basebackup restored with point-in-time recovery to a
# named restore point taken in the middle of a pgbench load: the recovered
# database is consistent, holds in-flight checkouts, and carries on.
use strict;
use warnings;
use CheckoutTest::HA qw(LEDGER_SQL);
# absolute node paths: archive_command and restore_command run in the data directory
BEGIN { require Cwd; $ENV{TESTDIR} //= Cwd::getcwd(); }
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use Time::HiRes qw(time usleep);


# The source sweeps another database, so nothing changes under the dump but
# what the test does.
my $source = PostgreSQL::Test::Cluster->new('source');
$source->init(has_archiving => 1, allows_streaming => 1);
$source->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'checkout'
checkout.database = 'postgres'
checkout.log_destination = 'both'
});
$source->start;
$source->safe_psql('postgres', 'CREATE DATABASE shop');

my $line = sub { my ($sku, $q) = @_; qq{[{"line_id":"1","sku":"$sku","quantity":$q,"unit_price":10}]} };

# One lock per state; the cart names the state.  `until` the phase reached,
# payments carry the locked total (10 per unit).
$source->safe_psql('shop', qq{
	CREATE EXTENSION checkout;
	INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES
	  ('R-1', 1000, 10), ('R-2', 1000, 10), ('R-3', 1, 10);

	SELECT checkout_start('active-started', 's', '${\ $line->('R-1', 1)}');
	SELECT checkout_advance(lock_id, 's', until => 'inventory_reservation')
	  FROM checkout_start('active-reserved', 's', '${\ $line->('R-1', 2)}');
	SELECT checkout_advance(lock_id, 's', until => 'price_lock')
	  FROM checkout_start('active-priced', 's', '${\ $line->('R-1', 3)}');
	SELECT checkout_advance(c.lock_id, 's', '{"reference":"auth-authorised","amount":40}', until => 'payment_authorization')
	  FROM checkout_start('active-authorised', 's', '${\ $line->('R-1', 4)}') c;
	SELECT checkout_advance(c.lock_id, 's', '{"reference":"auth-ordered","amount":50}', until => 'order_creation')
	  FROM checkout_start('active-ordered', 's', '${\ $line->('R-2', 5)}') c;
	SELECT checkout_advance(c.lock_id, 's', '{"reference":"auth-captured","amount":60}', until => 'order_creation')
	  FROM checkout_start('active-captured', 's', '${\ $line->('R-2', 6)}') c;
	SELECT checkout_advance(lock_id, 's', '{"reference":"cap-captured","amount":60}', until => 'payment_capture')
	  FROM checkout.locks WHERE cart_id = 'active-captured';
	-- for the restored cluster's worker (their deadline is set before the dump)
	SELECT checkout_advance(lock_id, 's', until => 'price_lock')
	  FROM checkout_start('active-to-expire', 's', '${\ $line->('R-2', 7)}');
	SELECT checkout_advance(c.lock_id, 's', '{"reference":"auth-rollfwd","amount":80}', until => 'order_creation')
	  FROM checkout_start('active-to-roll-forward', 's', '${\ $line->('R-1', 8)}') c;
	SELECT checkout_advance(lock_id, 's', '{"reference":"cap-rollfwd","amount":80}', until => 'payment_capture')
	  FROM checkout.locks WHERE cart_id = 'active-to-roll-forward';

	SELECT checkout_advance(c.lock_id, 's', '{"reference":"auth-done","amount":20}', until => 'payment_authorization')
	  FROM checkout_start('completed', 's', '${\ $line->('R-1', 2)}') c;
	SELECT checkout_advance(lock_id, 's', '{"reference":"cap-done","amount":20}', until => 'stock_commit')
	  FROM checkout.locks WHERE cart_id = 'completed';
	SELECT checkout_advance(lock_id, 's', until => 'price_lock')
	  FROM checkout_start('failed-stock', 's', '${\ $line->('R-3', 5)}');
	SELECT checkout_fail(c.lock_id, 's', 'card declined')
	  FROM checkout_start('failed-app', 's', '${\ $line->('R-1', 1)}') c,
	       LATERAL checkout_advance(c.lock_id, 's', '{"reference":"auth-failed","amount":10}', until => 'payment_authorization');
	SELECT checkout_advance(c.lock_id, 's', '{"reference":"auth-expired","amount":10}', until => 'payment_authorization')
	  FROM checkout_start('expired', 's', '${\ $line->('R-2', 1)}', ttl => interval '1 second') c;
	SELECT checkout_advance(c.lock_id, 's', '{"reference":"auth-cancelled","amount":30}', until => 'order_creation')
	  FROM checkout_start('cancelled', 's', '${\ $line->('R-2', 3)}') c;
	SELECT checkout_advance(lock_id, 's', '{"reference":"cap-cancelled","amount":30}', until => 'payment_capture')
	  FROM checkout.locks WHERE cart_id = 'cancelled';
	SELECT checkout_cancel(lock_id, 's') FROM checkout.locks WHERE cart_id = 'cancelled';
});
sleep 1.2;
$source->safe_psql('shop', 'SELECT checkout_cleanup_expired()');

my $states = $source->safe_psql('shop', q{
	SELECT string_agg(cart_id || ':' || state || ':' || COALESCE(phase::text, '-'), ' ' ORDER BY lock_id) FROM checkout.locks});
is($states, join(' ',
	'active-started:active:-', 'active-reserved:active:inventory_reservation', 'active-priced:active:price_lock',
	'active-authorised:active:payment_authorization', 'active-ordered:active:order_creation',
	'active-captured:active:payment_capture', 'active-to-expire:active:price_lock',
	'active-to-roll-forward:active:payment_capture', 'completed:completed:stock_commit',
	'failed-stock:failed:cart_validation', 'failed-app:failed:payment_authorization',
	'expired:expired:payment_authorization', 'cancelled:cancelled:payment_capture'),
	'the source holds a checkout in every state');
is($source->safe_psql('shop', q{SELECT string_agg(kind || ':' || reference, ' ' ORDER BY compensation_id) FROM checkout.compensations}),
	'void_required:auth-failed refund_required:cap-cancelled void_required:auth-expired',
	'with its compensations');
is($source->safe_psql('shop', LEDGER_SQL), '', 'the source ledger is whole');

# the restored cluster's worker must end these two in 15 seconds
$source->safe_psql('shop', q{UPDATE checkout.locks SET expires_at = now() + interval '15 seconds'
	WHERE cart_id IN ('active-to-expire', 'active-to-roll-forward')});

# every row of every table, to compare after the restore
my $tables_digest = q{
	SELECT string_agg(t || '=' || n || ':' || h, ' ' ORDER BY t) FROM (
	  SELECT 'inventory' AS t, count(*) AS n, md5(string_agg(x::text, '|' ORDER BY x.sku)) AS h FROM checkout.inventory x
	  UNION ALL SELECT 'locks', count(*), md5(string_agg(x::text, '|' ORDER BY x.lock_id)) FROM checkout.locks x
	  UNION ALL SELECT 'lock_lines', count(*), md5(string_agg(x::text, '|' ORDER BY x.lock_id, x.line_id)) FROM checkout.lock_lines x
	  UNION ALL SELECT 'reservations', count(*), md5(string_agg(x::text, '|' ORDER BY x.lock_id, x.sku)) FROM checkout.reservations x
	  UNION ALL SELECT 'price_snapshots', count(*), md5(string_agg(x::text, '|' ORDER BY x.lock_id, x.line_id)) FROM checkout.price_snapshots x
	  UNION ALL SELECT 'orders', count(*), md5(string_agg(x::text, '|' ORDER BY x.order_ref)) FROM checkout.orders x
	  UNION ALL SELECT 'compensations', count(*), md5(string_agg(x::text, '|' ORDER BY x.compensation_id)) FROM checkout.compensations x
	  UNION ALL SELECT 'events', count(*), md5(string_agg(x::text, '|' ORDER BY x.event_id)) FROM checkout.events x) d};
my $digest_before = $source->safe_psql('shop', $tables_digest);
my $max_ids = $source->safe_psql('shop', q{SELECT (SELECT max(lock_id) FROM checkout.locks) || ':' ||
	(SELECT max(compensation_id) FROM checkout.compensations) || ':' || (SELECT max(event_id) FROM checkout.events)});
my ($max_lock, $max_comp, $max_event) = split /:/, $max_ids;

# --- pg_dump / pg_restore --------------------------------------------------

my $dump = $source->basedir . '/shop.dump';
$source->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $source->connstr('shop') ], 'pg_dump -Fc');

my $restored = PostgreSQL::Test::Cluster->new('restored');
$restored->init;
$restored->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'checkout'
checkout.database = 'shop'
checkout.log_destination = 'both'
});
$restored->start;
# the database first, then a restart: its sweeper runs, waiting for the extension
$restored->safe_psql('postgres', 'CREATE DATABASE shop');
$restored->restart;
ok($restored->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'checkout sweeper'}),
	'the new cluster runs a sweeper for the empty database');
# one transaction: the extension and its rows appear together to the sweeper
$restored->command_ok([ 'pg_restore', '--single-transaction', '--exit-on-error', '-d', $restored->connstr('shop'), $dump ],
	'pg_restore --single-transaction into a cluster with checkout preloaded');

is($restored->safe_psql('shop', $tables_digest), $digest_before,
	'every row of every checkout table is restored as it was (orders, compensations, snapshots, events)');
is($restored->safe_psql('shop', LEDGER_SQL), '', 'restored ledger whole, checkout_verify() empty');

# restored locks go on
sub lock_of { my ($node, $cart) = @_; $node->safe_psql('shop', "SELECT lock_id FROM checkout.locks WHERE cart_id = '$cart'") }

my $id = lock_of($restored, 'active-authorised');
is($restored->safe_psql('shop', qq{SELECT state || ':' || phase || ':' || order_ref FROM checkout_advance($id, 's',
	'{"reference":"cap-authorised","amount":40}', until => 'stock_commit')}),
	"completed:stock_commit:CO-$id", 'a restored authorised checkout advances to completion');
$id = lock_of($restored, 'active-ordered');
is($restored->safe_psql('shop', "SELECT state FROM checkout_cancel($id, 's')"), 'cancelled', 'a restored ordered checkout is cancelled');
is($restored->safe_psql('shop', qq{SELECT string_agg(kind || ':' || reference, ' ') FROM checkout.compensations WHERE lock_id = $id}),
	'void_required:auth-ordered', 'with its void_required compensation');
is($restored->safe_psql('shop', "SELECT status FROM checkout.orders WHERE lock_id = $id"), 'cancelled', 'and its order cancelled');
$id = lock_of($restored, 'active-started');
is($restored->safe_psql('shop', qq{SELECT state || ':' || phase FROM checkout_advance($id, 's', until => 'price_lock')}),
	'active:price_lock', 'a restored just-started checkout advances through reservation and price lock');

my $new = $restored->safe_psql('shop', qq{SELECT lock_id FROM checkout_start('after-restore', 's2', '${\ $line->('R-1', 1)}')});
ok($new > $max_lock, "a new checkout gets lock_id $new, above every restored one ($max_lock)");
my $comp = $restored->safe_psql('shop', "SELECT max(compensation_id) FROM checkout.compensations");
ok($comp > $max_comp, "a new compensation gets id $comp, above every restored one ($max_comp)");
my $event = $restored->safe_psql('shop', "SELECT max(event_id) FROM checkout.events");
ok($event > $max_event, "new events get ids from $event, above every restored one ($max_event)");
is($restored->safe_psql('shop', "SELECT count(*) FROM checkout.locks WHERE lock_id = $new"), '1', 'no id was handed out twice');

my $expire_ids = $restored->safe_psql('shop', q{SELECT string_agg(lock_id::text, ',') FROM checkout.locks
	WHERE cart_id IN ('active-to-expire', 'active-to-roll-forward')});
ok($restored->poll_query_until('shop', qq{SELECT count(*) = 2 FROM checkout.locks WHERE lock_id IN ($expire_ids) AND state <> 'active'}),
	'the worker ends the restored locks that fall due');
is($restored->safe_psql('shop', q{SELECT string_agg(cart_id || ':' || state, ' ' ORDER BY cart_id) FROM checkout.locks
	WHERE cart_id IN ('active-to-expire', 'active-to-roll-forward')}),
	'active-to-expire:expired active-to-roll-forward:completed',
	'expiring the uncaptured one, rolling the captured one forward');
my $late = $restored->safe_psql('shop', qq{SELECT round(extract(epoch FROM max(finished_at - expires_at))::numeric, 1)
	FROM checkout.locks WHERE lock_id IN ($expire_ids)});
ok($late <= 2, "within ${late}s of their deadline, with checkout.cleanup_interval at its 5 minutes");
is($restored->safe_psql('shop', LEDGER_SQL), '', 'after it all the ledger is whole, checkout_verify() empty');
$restored->stop;

# --- base backup and point-in-time recovery ----------------------------------

$source->backup('base');
my $before = $source->safe_psql('shop', 'SELECT count(*) FROM checkout.locks');

my $script = $source->basedir . '/checkout.sql';
open my $fh, '>', $script or die $!;
print $fh q{
\set cart :client_id * 1000000000 + random(1, 999999999)
\set sku random(1, 2)
\set q random(1, 3)
SELECT lock_id FROM checkout_start('pitr-' || :cart, 'sess-' || :client_id,
  jsonb_build_array(jsonb_build_object('line_id', '1', 'sku', 'R-' || :sku, 'quantity', :q, 'unit_price', 10))) \gset
SELECT total FROM checkout_advance(:lock_id, 'sess-' || :client_id, until => 'price_lock') \gset
SELECT checkout_advance(:lock_id, 'sess-' || :client_id, jsonb_build_object('reference', 'a-' || :lock_id, 'amount', :total), until => 'payment_authorization');
SELECT checkout_advance(:lock_id, 'sess-' || :client_id, jsonb_build_object('reference', 'c-' || :lock_id, 'amount', :total), until => 'stock_commit');
};
close $fh;
my $restocked_at = $source->safe_psql('shop',
	"UPDATE checkout.inventory SET on_hand = 1000000 WHERE sku IN ('R-1', 'R-2'); SELECT now()");
my ($out, $err) = ('', '');
my $load = IPC::Run::start([ 'pgbench', '-n', '-c', 8, '-j', 2, '-T', 4, '-f', $script, $source->connstr('shop') ],
	'>', \$out, '2>', \$err);
sleep 2;
$source->safe_psql('shop', "SELECT pg_create_restore_point('mid_load')");
$load->finish;
like($out, qr/number of failed transactions: 0 /, 'the load ran without error');
my $after = $source->safe_psql('shop', 'SELECT count(*) FROM checkout.locks');
# the restore point's WAL must reach the archive
my $last_wal = $source->safe_psql('shop', 'SELECT pg_walfile_name(pg_switch_wal())');
$source->poll_query_until('postgres', "SELECT last_archived_wal >= '$last_wal' FROM pg_stat_archiver")
  or die 'WAL not archived';

my $pitr = PostgreSQL::Test::Cluster->new('pitr');
$pitr->init_from_backup($source, 'base', has_restoring => 1, standby => 0);
$pitr->append_conf('postgresql.conf', q{
checkout.database = 'shop'
recovery_target_name = 'mid_load'
recovery_target_action = 'promote'
});
$pitr->start;
ok($pitr->poll_query_until('shop', 'SELECT NOT pg_is_in_recovery()'), 'recovered to the restore point and promoted');
ok($pitr->log_contains(qr/recovery stopping at restore point "mid_load"/), 'recovery stopped at the named restore point');

my $count = $pitr->safe_psql('shop', 'SELECT count(*) FROM checkout.locks');
ok($count > $before && $count < $after, "the recovered database is mid-load ($before < $count locks < $after)");
my $in_flight = $pitr->safe_psql('shop', q{SELECT count(*) FROM checkout.locks WHERE state = 'active' AND cart_id LIKE 'pitr-%'});
ok($in_flight > 0, "with $in_flight checkouts in flight");
is($pitr->safe_psql('shop', LEDGER_SQL), '', 'the recovered ledger is whole, checkout_verify() empty');
# (the recovered sweeper may already have rolled forward a fixture lock that was due)
is($pitr->safe_psql('shop', qq{SELECT sum(on_hand) + (SELECT COALESCE(sum(ll.quantity), 0) FROM checkout.lock_lines ll
	JOIN checkout.locks l USING (lock_id) WHERE l.state = 'completed' AND ll.sku IN ('R-1', 'R-2') AND l.finished_at >= '$restocked_at')
	FROM checkout.inventory WHERE sku IN ('R-1', 'R-2')}), 2000000, 'every unit sold since the restock is accounted for');
# the recovered primary carries on: the sweeper runs, in-flight locks can be released
ok($pitr->poll_query_until('shop', q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'checkout sweeper'}),
	'the recovered primary runs its sweeper');
$pitr->safe_psql('shop', q{SELECT checkout_release(lock_id, 'recovered in flight') FROM checkout.locks WHERE state = 'active'});
is($pitr->safe_psql('shop', 'SELECT sum(reserved) FROM checkout.inventory'), '0', 'releasing what was in flight frees all stock');
is($pitr->safe_psql('shop', LEDGER_SQL), '', 'and the ledger stays whole');

$pitr->stop;
$source->stop;
done_testing();
