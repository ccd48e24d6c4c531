# Operating the background worker:
#  - checkout.database is checked when set (list syntax, empty or too long
#    names, duplicates, more databases than can be swept), with a detail that
#    says what is wrong;
#  - databases that are not swept take no shared-memory slot: locks created in
#    more unswept databases than there are slots (32) do not keep a swept
#    database created afterwards from getting its prompt expiry;
#  - a sweeper that cannot start is logged once per cause, not every retry
#    (a database that does not exist yet; no free background worker slot);
#  - restart timing as the README says: a sweeper that stops after running
#    a while is started again at once; a launcher that stops is started again
#    after 5 seconds, with one sweeper per database (the old ones go with it);
#  - event pruning commits a batch per transaction: while one old row is
#    locked by another session, the batches before it are already gone.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $unswept = 32;	# MAX_SWEEPERS in src/worker.c

my $node = PostgreSQL::Test::Cluster->new('ops');
$node->init;
# 4 background workers: the logical replication launcher, the checkout
# launcher and two sweepers; the third listed database finds no slot
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'checkout'
checkout.database = 'postgres, swept, blocked'
checkout.cleanup_interval = '5min'
max_worker_processes = 4
max_parallel_workers_per_gather = 0
});
$node->start;
my $t_start = time;

sub sql { my ($db, $q) = @_; return $node->safe_psql($db, $q); }

sub sweepers
{
	my ($db) = @_;
	return sql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'checkout sweeper' AND datname = '$db'");
}

sub wait_for
{
	my ($seconds, $probe) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		return 1 if $probe->();
		usleep(100_000);
	}
	return 0;
}

# seconds from a lock's deadline to its expiry by the sweeper, or undef
sub expiry_latency
{
	my ($db, $cart) = @_;
	my $lock = sql($db, qq{
		SELECT (checkout_advance(s.lock_id, 'sess', until => 'inventory_reservation')).lock_id
		FROM checkout_start('$cart', 'sess', '[{"line_id":"1","sku":"S-1","quantity":1,"unit_price":10}]', interval '1 second') s});
	wait_for(10, sub { sql($db, "SELECT state FROM checkout.locks WHERE lock_id = $lock") eq 'expired' })
	  or return undef;
	return sql($db, qq{SELECT extract(epoch FROM e.logged_at - l.expires_at)
		FROM checkout.locks l, checkout.events e
		WHERE l.lock_id = $lock AND e.lock_id = $lock AND e.event = 'expired'});
}

# ---- checkout.database is validated when set ----
my @bad = (
	[ q{'postgres,,app'}, qr/List syntax is invalid/, 'an empty entry' ],
	[ q{'postgres, ""'}, qr/A database name in the list is empty/, 'an empty quoted name' ],
	[ "'" . ('d' x 64) . "'", qr/is too long \(64 bytes, the maximum is 63\)/, 'a name of 64 bytes' ],
	[ q{'app, shop, App'}, qr/Database "app" is listed more than once/, 'a duplicate (names fold to lower case)' ],
	[ "'" . join(',', map { "db$_" } 1 .. 33) . "'", qr/The list names 33 databases; at most 32 can be swept/,
		'more databases than sweepers' ],
);
for my $case (@bad)
{
	my ($value, $detail, $what) = @$case;
	my ($rc, $out, $err) = $node->psql('postgres', "ALTER SYSTEM SET checkout.database = $value");
	ok($rc != 0 && $err =~ /invalid value for parameter "checkout.database"/ && $err =~ $detail,
		"checkout.database refuses $what") or diag($err);
}
is($node->psql('postgres', q{ALTER SYSTEM SET checkout.database = 'app, "Shop DB", } . ('d' x 63) . "'"), 0,
	'a valid list is accepted');
sql('postgres', 'ALTER SYSTEM RESET checkout.database');

# ---- unswept databases take no slot ----
sql('postgres', q{CREATE DATABASE tmpl});
sql('tmpl', q{
	CREATE EXTENSION checkout;
	ALTER SYSTEM SET checkout.log_destination = 'both';
	INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('S-1', 1000, 10);});
sql('postgres', 'SELECT pg_reload_conf()');
# one psql for all: \c to each new database and take a lock there
sql('postgres', join('', map { qq{CREATE DATABASE other_$_ TEMPLATE tmpl;
\\c other_$_
SELECT FROM checkout_start('cart', 'sess', '[{"line_id":"1","sku":"S-1","quantity":1,"unit_price":10}]', interval '1 second');
} } 1 .. $unswept));
is(sql('postgres', q{SELECT count(*) FROM pg_database WHERE datname LIKE 'other\\_%'}), $unswept, "$unswept unswept databases");
is(join('', map { sql("other_$_", q{SELECT count(*) FROM checkout.locks}) } 1 .. $unswept), '1' x $unswept,
	'each holds a lock');

# 'swept' has been missing for more than one retry of the launcher
my $missing_for = time - $t_start;
sleep(int(12 - $missing_for)) if $missing_for < 12;
sql('postgres', q{CREATE DATABASE swept TEMPLATE tmpl});
ok(wait_for(15, sub { sweepers('swept') eq '1' }), 'a database created later gets its sweeper');
my $latency = expiry_latency('swept', 'swept-cart');
ok(defined $latency && $latency < 3, 'and its 1-second lock is expired within 3 s of the deadline')
  or diag('latency: ' . ($latency // 'never'));
note(sprintf('swept database: expired %.3f s after the deadline', $latency // -1));
is(sql("other_$unswept", q{SELECT state FROM checkout.locks}), 'active', 'locks in unswept databases are left alone');

my $log = slurp_file($node->logfile);
my $lines = () = $log =~ /database "swept" named in checkout.database does not exist/g;
is($lines, 1, 'the missing database was logged once over several retries');

# ---- no background worker slot: logged once ----
sql('postgres', q{CREATE DATABASE blocked TEMPLATE tmpl});
ok(wait_for(15, sub { slurp_file($node->logfile) =~ /could not start the sweeper for database "blocked"/ }),
	"a database without a free worker slot is logged");
sleep 11;	# one more retry
$log = slurp_file($node->logfile);
$lines = () = $log =~ /could not start the sweeper for database "blocked"/g;
is($lines, 1, 'no free worker slot was logged once over several retries');
like($log, qr/No background worker slot is free \(max_worker_processes is 4\)/, 'naming the setting to raise');
is(sweepers('blocked'), '0', 'and that database has no sweeper');

# ---- restart timing ----
my $pid = sql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkout sweeper' AND datname = 'swept'});
sql('postgres', "SELECT pg_terminate_backend($pid)");
my $t0 = time;
ok(wait_for(5, sub { sql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'checkout sweeper' AND datname = 'swept' AND pid <> $pid") eq '1' }),
	'a sweeper that ran for a while and stopped is started again at once');
note(sprintf('sweeper restarted after %.2f s', time - $t0));

my $launcher = sql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkout launcher'});
sql('postgres', "SELECT pg_terminate_backend($launcher)");
$t0 = time;
ok(wait_for(3, sub { sql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'checkout%'}) eq '0' }),
	'the sweepers stop with their launcher');
ok(wait_for(12, sub { sql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'checkout launcher'}) eq '1' }),
	'the launcher is started again');
my $launcher_back = time - $t0;
ok($launcher_back >= 4 && $launcher_back < 8, sprintf('after about 5 seconds (%.1f s)', $launcher_back));
ok(wait_for(5, sub { sweepers('postgres') eq '1' && sweepers('swept') eq '1' }), 'with one sweeper per database');
sleep 1;
is(sweepers('postgres') . sweepers('swept'), '11', 'not two');

# ---- pruning: a batch per transaction ----
sql('swept', q{
	INSERT INTO checkout.events (logged_at, event, detail)
	SELECT now() - interval '8 days' + g * interval '1 ms', 'old', '{}' FROM generate_series(1, 25000) g;});
my $blocker = $node->background_psql('swept');
$blocker->query_safe(q{BEGIN; SELECT event_id FROM checkout.events WHERE event = 'old' ORDER BY event_id DESC LIMIT 1 FOR UPDATE});
my $old = q{SELECT count(*) FROM checkout.events WHERE event = 'old'};
sql('swept', q{SELECT checkout_start('prune-trigger', 'sess', '[{"line_id":"1","sku":"S-1","quantity":1,"unit_price":10}]', interval '1 second')});
ok(wait_for(15, sub { sql('swept', $old) <= 5000 }),
	'while the last old event is locked, the batches before it are committed')
  or diag('old events left: ' . sql('swept', $old));
is(sql('postgres', q{SELECT wait_event_type FROM pg_stat_activity WHERE backend_type = 'checkout sweeper' AND datname = 'swept'}),
	'Lock', 'the sweeper waits for the locked row');
$blocker->query_safe('ROLLBACK');
$blocker->quit;
ok(wait_for(10, sub { sql('swept', $old) eq '0' }), 'then every old event is pruned');

$latency = expiry_latency('swept', 'after-prune');
ok(defined $latency && $latency < 3, 'and expiry is prompt again');

$node->stop;
done_testing();
