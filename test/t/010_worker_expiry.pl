# The background worker: expires a 1-second lock within 3 seconds (woken by
# the new deadline, although the interval is 5 minutes); comes back after
# kill -9; reacts to SIGHUP; a streaming standby serves checkout_status and
# runs no sweeper; after promotion the new primary sweeps.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use CheckoutTest::Node;

my $primary = CheckoutTest::Node->start_new('primary',
	init     => { allows_streaming => 1 },
	settings => { 'checkout.cleanup_interval' => '5min', restart_after_crash => 'on' },
	stock    => [ [ 'W-1', 100, 10 ] ]);

sub start_reserved_lock
{
	my ($node, $cart, $ttl) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT (checkout_advance(s.lock_id, 'sess', until => 'inventory_reservation')).lock_id
		FROM checkout_start('$cart', 'sess', '[{"line_id":"1","sku":"W-1","quantity":2,"unit_price":10}]', interval '$ttl') s});
}

$primary->wait_for_sweeper;
is($primary->query_value(
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'checkout launcher'"), '1', 'the launcher runs');

my $lock = start_reserved_lock($primary, 'w-cart-1', '1 second');
my $t0 = time;
ok($primary->wait_for_state($lock, 'expired', 3), 'a 1-second lock is expired by the worker within 3 seconds');
note(sprintf('expired %.2f s after start', time - $t0));
is($primary->query_value("SELECT reserved FROM checkout.inventory WHERE sku = 'W-1'"), '0',
	'its reservation is released');
ok($primary->log_contains(qr/\[checkout\] expired \{"lock_id":$lock,/), 'the expiry is logged');

# kill -9 of the sweeper: crash restart, the sweeper comes back and sweeps
my $pid = $primary->sweeper_pid;
kill 'KILL', $pid;
$primary->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'checkout sweeper' AND pid <> $pid")
  or die 'sweeper did not come back';
$lock = start_reserved_lock($primary, 'w-cart-2', '1 second');
ok($primary->wait_for_state($lock, 'expired', 3), 'after kill -9 the sweeper is back and sweeps');

# a lock whose deadline passes before its transaction commits: the deadline
# reaches the sweeper at commit, so the lock is swept at once, not after the
# 5-minute interval
my $slow = $primary->background_psql('postgres');
$slow->query_safe('BEGIN');
$lock = $slow->query_safe(q{
	SELECT (checkout_advance(s.lock_id, 'sess', until => 'inventory_reservation')).lock_id
	FROM checkout_start('w-cart-late', 'sess', '[{"line_id":"1","sku":"W-1","quantity":2,"unit_price":10}]', interval '1 second') s});
$lock =~ s/\s+//g;
sleep 2;
$slow->query_safe('COMMIT');
$t0 = time;
ok($primary->wait_for_state($lock, 'expired', 3), 'a lock committed after its deadline is expired within 3 seconds of the commit');
note(sprintf('expired %.2f s after the commit', time - $t0));
$slow->quit;

# default_transaction_read_only (pg_auto_failover's fence while it promotes
# a node): the sweeper pauses without an error, and sweeps at once when
# the fence is lifted
$pid = $primary->sweeper_pid;
$primary->safe_psql('postgres', "ALTER SYSTEM SET default_transaction_read_only = on; SELECT pg_reload_conf();");
ok($primary->wait_for_log(qr/checkout sweeper for database "postgres" paused: default_transaction_read_only is on/),
	'the sweeper reports the pause');
$lock = $primary->safe_psql('postgres', q{
	BEGIN READ WRITE;
	SELECT (checkout_advance(s.lock_id, 'sess', until => 'inventory_reservation')).lock_id
	FROM checkout_start('w-cart-fenced', 'sess', '[{"line_id":"1","sku":"W-1","quantity":2,"unit_price":10}]', interval '1 second') s;
	COMMIT;});
sleep 2;
is($primary->query_value("SELECT state FROM checkout.locks WHERE lock_id = $lock"), 'active',
	'while read-only the due lock waits');
is($primary->sweeper_pid, $pid, 'the sweeper did not exit');
ok(!$primary->log_contains(qr/cannot execute UPDATE in a read-only transaction/), 'and logged no error');
$primary->safe_psql('postgres', "ALTER SYSTEM RESET default_transaction_read_only; SELECT pg_reload_conf();");
$t0 = time;
ok($primary->wait_for_state($lock, 'expired', 2), 'the fence lifted, the sweeper sweeps within 2 seconds');
note(sprintf('swept %.2f s after the reload', time - $t0));

# SIGHUP: a shorter interval is used for locks whose deadline shared memory
# does not know (written behind the API's back, as after a restore)
$primary->safe_psql('postgres', "ALTER SYSTEM SET checkout.cleanup_interval = '1s'; SELECT pg_reload_conf();");
sleep 1;
$lock = start_reserved_lock($primary, 'w-cart-3', '1 hour');
$primary->safe_psql('postgres', "UPDATE checkout.locks SET expires_at = now() WHERE lock_id = $lock");
ok($primary->wait_for_state($lock, 'expired', 4), 'after SIGHUP the new cleanup_interval applies');

# a streaming standby: serves status, runs no sweeper, changes nothing
$primary->backup('bk');
my $standby = CheckoutTest::Node->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
$lock = start_reserved_lock($primary, 'w-cart-4', '2 seconds');
$primary->safe_psql('postgres', "ALTER SYSTEM SET checkout.cleanup_interval = '5min'; SELECT pg_reload_conf();");
# stop the primary before the deadline so only the standby could sweep
$primary->stop('immediate');
$standby->poll_query_until('postgres', "SELECT count(*) = 1 FROM checkout.locks WHERE lock_id = $lock")
  or die 'lock not replicated';
sleep 3;
is($standby->query_value("SELECT state FROM checkout_status($lock, 'sess')"), 'expired',
	'the standby serves checkout_status, deriving expiry');
is($standby->query_value("SELECT state FROM checkout.locks WHERE lock_id = $lock"), 'active',
	'the standby swept nothing');
is($standby->query_value(
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'checkout%'"), '0', 'no worker runs on the standby');

$standby->promote;
ok($standby->wait_for_state($lock, 'expired', 10), 'after promotion the new primary sweeps');
is($standby->query_value("SELECT reserved FROM checkout.inventory WHERE sku = 'W-1'"), '0',
	'and releases the stock');

$standby->stop;
done_testing();
