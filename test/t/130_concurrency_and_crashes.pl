# Concurrency and crashes not covered elsewhere.
# - Two sessions calling checkout_cleanup_expired() in a loop and the worker,
#   all over the same 1,200 locks falling due at once (more than the
#   worker's batch of 1,000): each lock is ended
#   once (one expiry or roll-forward, one compensation, stock moved once).
# - checkout.prevent_concurrent = off lets several sessions hold one cart;
#   switching it back on restores KC001 for new starts.
# - kill -9 of a backend inside each phase, inside a rollback, and an
#   immediate shutdown during a sweep: after crash recovery the ledger equals
#   the held reservations, the lock is as it was before the call, and the
#   call can be made again.  A BEFORE trigger on the table the step writes
#   holds the backend there (pg_sleep) when the test has armed it for that
#   backend's pid.
use strict;
use warnings;
use CheckoutTest::HA qw(LEDGER_SQL);
use CheckoutTest::Node;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = CheckoutTest::Node->start_new('crashes',
	settings => {
		'checkout.log_destination' => 'both',
		restart_after_crash        => 'on',
		max_connections            => 30,
	},
	stock => [ map { [ "Q-$_", 100000, 10 ] } 1 .. 10 ]);

# --- concurrent sweeps ----------------------------------------------------

# 1,200 locks share one deadline, 8 s away (the worker is woken for it),
# made in transactions of 200 (many starts in one transaction slow down
# superlinearly); a third authorised (void on expiry), a third captured
# (roll forward), a third only reserved.
my $n = 1200;
my $t_due = time + 8;
for (my $from = 1; $from <= $n; $from += 200)
{
	my $to = $from + 199;
	$node->safe_psql('postgres', qq{
		BEGIN;
		SELECT count(*) FROM (
		  SELECT checkout_advance(s.lock_id, 'sweep',
		           CASE WHEN g % 3 = 0 THEN '{}'::jsonb ELSE '{"reference":"auth","amount":20}'::jsonb END,
		           until => CASE g % 3 WHEN 0 THEN 'price_lock' WHEN 1 THEN 'payment_authorization' ELSE 'order_creation' END::checkout.phase)
		  FROM generate_series($from, $to) g,
		       LATERAL checkout_start('sweep-' || g, 'sweep',
		           ('[{"line_id":"1","sku":"Q-' || (g % 10 + 1) || '","quantity":2,"unit_price":10}]')::jsonb,
		           ttl => to_timestamp($t_due) - now()) s) started;
		SELECT count(*) FROM (
		  SELECT checkout_advance(lock_id, 'sweep', '{"reference":"cap","amount":20}', until => 'payment_capture')
		  FROM checkout.locks WHERE phase = 'order_creation' AND cart_id LIKE 'sweep-%') captured;
		COMMIT;});
}
ok($t_due - time > 1, sprintf('the 1,200 locks were made %.1fs before their common deadline', $t_due - time));
is($node->safe_psql('postgres', q{SELECT count(DISTINCT expires_at) FROM checkout.locks WHERE cart_id LIKE 'sweep-%'}), '1',
	'they share one deadline');
my $on_hand_before = $node->safe_psql('postgres', 'SELECT sum(on_hand) FROM checkout.inventory');
my $log_offset = -s $node->logfile;

# two callers wait for the deadline, then sweep in batches of 50 until dry
my @callers;
for my $c (1 .. 2)
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', qq{
		DO \$\$
		DECLARE got int; total int := 0;
		BEGIN
		  PERFORM pg_sleep_until(to_timestamp($t_due));
		  LOOP
		    got := checkout_cleanup_expired(50);
		    total := total + got;
		    COMMIT;
		    EXIT WHEN got = 0 AND NOT EXISTS (SELECT 1 FROM checkout.locks WHERE state = 'active' AND cart_id LIKE 'sweep-%');
		  END LOOP;
		  RAISE NOTICE 'caller expired %', total;
		END \$\$} ], '>', \$out, '2>', \$err);
	push @callers, [ $h, \$err ];
}
my @by_caller;
for my $c (@callers)
{
	$c->[0]->finish;
	push @by_caller, ${ $c->[1] } =~ /caller expired (\d+)/ ? $1 : 'error: ' . ${ $c->[1] };
}
like("@by_caller", qr/^\d+ \d+$/, "both callers swept without error (@by_caller locks)");

is($node->safe_psql('postgres', q{SELECT string_agg(state || '=' || n, ' ' ORDER BY state) FROM
	(SELECT state, count(*) AS n FROM checkout.locks WHERE cart_id LIKE 'sweep-%' GROUP BY 1) s}),
	'completed=400 expired=800', 'every due lock ended: the captured third completed, the rest expired');
is($node->safe_psql('postgres', q{SELECT count(*) FROM (SELECT lock_id FROM checkout.events
	WHERE event IN ('expired', 'completed') AND cart_id LIKE 'sweep-%' GROUP BY 1 HAVING count(*) <> 1) d}),
	'0', 'each lock has exactly one expired or completed event');
is($node->safe_psql('postgres', q{SELECT count(*) || ':' || count(DISTINCT c.lock_id) FROM checkout.compensations c
	JOIN checkout.locks l USING (lock_id) WHERE l.cart_id LIKE 'sweep-%'}),
	'400:400', 'one void_required per authorised lock, none twice');
is($node->safe_psql('postgres', 'SELECT sum(on_hand) FROM checkout.inventory'), $on_hand_before - 800,
	'stock of the 400 captured locks committed once (800 units)');
is($node->safe_psql('postgres', LEDGER_SQL), '', 'ledger whole, checkout_verify() empty');
my %by_pid;
my $log = slurp_file($node->logfile, $log_offset);
$by_pid{$1}++ while $log =~ /\[(\d+)\][^\n]*\[checkout\] (?:expired|completed) \{"lock_id":\d+,"cart_id":"sweep-/g;
my $sweeper = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkout sweeper'});
my $lines = 0;
$lines += $_ for values %by_pid;
is($lines, $n, 'the server log has one end line per lock');
note(sprintf('ended by the worker: %d, by the callers: %s', $by_pid{$sweeper} // 0, join(' and ', @by_caller)));

# --- prevent_concurrent off, then on ------------------------------------------

$node->safe_psql('postgres', 'ALTER SYSTEM SET checkout.prevent_concurrent = off; SELECT pg_reload_conf()');
sleep 1;
my $cart_line = '[{"line_id":"1","sku":"Q-1","quantity":1,"unit_price":10}]';
my @shared = map {
	$node->safe_psql('postgres', qq{SELECT (checkout_advance(lock_id, 'share-$_', until => 'price_lock')).lock_id
		FROM checkout_start('shared-cart', 'share-$_', '$cart_line')})
} 1 .. 3;
is($node->safe_psql('postgres', q{SELECT count(*) || ':' || bool_or(exclusive) FROM checkout.locks WHERE cart_id = 'shared-cart' AND state = 'active'}),
	'3:false', 'with prevent_concurrent off three sessions hold the cart, non-exclusively');

$node->safe_psql('postgres', 'ALTER SYSTEM SET checkout.prevent_concurrent = on; SELECT pg_reload_conf()');
sleep 1;
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	qq{\\set VERBOSITY verbose\nSELECT checkout_start('shared-cart', 'share-4', '$cart_line')});
like($stderr, qr/KC001/, 'switched back on, a new session gets KC001 on the shared cart');
is($node->safe_psql('postgres', qq{SELECT lock_id FROM checkout_start('shared-cart', 'share-2', '$cart_line')}), $shared[1],
	'a holder re-entering gets its own lock');
$node->safe_psql('postgres', "SELECT checkout_cancel($shared[$_ - 1], 'share-$_')") for 1 .. 3;
my $exclusive = $node->safe_psql('postgres', qq{SELECT lock_id FROM checkout_start('shared-cart', 'share-4', '$cart_line')});
is($node->safe_psql('postgres', "SELECT exclusive FROM checkout.locks WHERE lock_id = $exclusive"), 't',
	'once they are gone the cart is taken exclusively again');
($ret, $stdout, $stderr) = $node->psql('postgres',
	qq{\\set VERBOSITY verbose\nSELECT checkout_start('shared-cart', 'share-5', '$cart_line')});
like($stderr, qr/KC001/, 'and held against others');
$node->safe_psql('postgres', "SELECT checkout_cancel($exclusive, 'share-4')");
is($node->safe_psql('postgres', LEDGER_SQL), '', 'ledger whole after the shared cart');

# --- kill -9 inside each step -------------------------------------------------

# A hold point fires for the backends the test arms it for, by pid: after
# the crash the pid is gone and the point disarmed.
$node->safe_psql('postgres', q{
	CREATE TABLE hold_points (point text, pid int);
	-- (the extension's functions run with search_path = pg_catalog, pg_temp)
	CREATE FUNCTION hold_here() RETURNS trigger LANGUAGE plpgsql SET search_path = public, pg_catalog AS $$
	BEGIN
	  IF EXISTS (SELECT 1 FROM public.hold_points WHERE point = TG_ARGV[0] AND pid = pg_backend_pid()) THEN
	    PERFORM pg_sleep(300);
	  END IF;
	  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
	END $$;
	CREATE TRIGGER hold_start BEFORE INSERT ON checkout.lock_lines
	  FOR EACH ROW EXECUTE FUNCTION hold_here('start');
	CREATE TRIGGER hold_cart_validation BEFORE UPDATE ON checkout.locks
	  FOR EACH ROW WHEN (OLD.phase IS NULL AND NEW.phase = 'cart_validation') EXECUTE FUNCTION hold_here('cart_validation');
	CREATE TRIGGER hold_inventory_reservation BEFORE INSERT ON checkout.reservations
	  FOR EACH ROW EXECUTE FUNCTION hold_here('inventory_reservation');
	CREATE TRIGGER hold_price_lock BEFORE INSERT ON checkout.price_snapshots
	  FOR EACH ROW EXECUTE FUNCTION hold_here('price_lock');
	CREATE TRIGGER hold_payment_authorization BEFORE UPDATE ON checkout.locks
	  FOR EACH ROW WHEN (OLD.auth_reference IS NULL AND NEW.auth_reference IS NOT NULL) EXECUTE FUNCTION hold_here('payment_authorization');
	CREATE TRIGGER hold_order_creation BEFORE INSERT ON checkout.orders
	  FOR EACH ROW EXECUTE FUNCTION hold_here('order_creation');
	CREATE TRIGGER hold_payment_capture BEFORE UPDATE ON checkout.locks
	  FOR EACH ROW WHEN (OLD.capture_reference IS NULL AND NEW.capture_reference IS NOT NULL) EXECUTE FUNCTION hold_here('payment_capture');
	CREATE TRIGGER hold_stock_commit BEFORE UPDATE ON checkout.inventory
	  FOR EACH ROW WHEN (NEW.on_hand < OLD.on_hand) EXECUTE FUNCTION hold_here('stock_commit');
	CREATE TRIGGER hold_release BEFORE DELETE ON checkout.reservations
	  FOR EACH ROW EXECUTE FUNCTION hold_here('release');
	CREATE TRIGGER hold_refund BEFORE INSERT ON checkout.compensations
	  FOR EACH ROW EXECUTE FUNCTION hold_here('refund');
});

my $lines2 = '[{"line_id":"1","sku":"Q-2","quantity":2,"unit_price":10},{"line_id":"2","sku":"Q-3","quantity":1,"unit_price":10}]';

sub lock_row
{
	my ($cart) = @_;
	return $node->safe_psql('postgres', qq{SELECT COALESCE(string_agg(lock_id || ':' || state || ':' || COALESCE(phase::text, '-'), ','), 'none')
		FROM checkout.locks WHERE cart_id = '$cart'});
}

# Runs SQL in a session that arms POINT for itself first; once it sleeps
# there, kills its backend with SIGKILL and waits for crash recovery.
sub kill_inside
{
	my ($point, $sql) = @_;
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-At', '-d', $node->connstr('postgres') . " application_name=victim_$point" ],
		\$in, \$out, \$err);
	$in .= "INSERT INTO hold_points VALUES ('$point', pg_backend_pid());\n$sql;\n";
	$h->pump_nb;
	my $held = $node->poll_query_until('postgres', qq{SELECT count(*) = 1 FROM pg_stat_activity
		WHERE application_name = 'victim_$point' AND wait_event = 'PgSleep'});
	my $pid = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE application_name = 'victim_$point'");
	kill 'KILL', $pid if $pid;
	$h->finish;
	$node->poll_query_until('postgres', 'SELECT true') or die 'no recovery';
	return $held;
}

# $lines2 totals 2 x 10 + 1 x 10
my %pay = (auth => '{"reference":"auth-k","amount":30}', cap => '{"reference":"cap-k","amount":30}');
my @steps = (
	# point, the call, the lock state before and after a call that completes
	[ 'start', "SELECT checkout_start('kcart', 'ks', '$lines2')", 'none', '-' ],
	[ 'cart_validation', "SELECT checkout_advance(%d, 'ks')", '-', 'cart_validation' ],
	[ 'inventory_reservation', "SELECT checkout_advance(%d, 'ks')", 'cart_validation', 'inventory_reservation' ],
	[ 'price_lock', "SELECT checkout_advance(%d, 'ks')", 'inventory_reservation', 'price_lock' ],
	[ 'payment_authorization', "SELECT checkout_advance(%d, 'ks', '$pay{auth}')", 'price_lock', 'payment_authorization' ],
	[ 'order_creation', "SELECT checkout_advance(%d, 'ks')", 'payment_authorization', 'order_creation' ],
	[ 'payment_capture', "SELECT checkout_advance(%d, 'ks', '$pay{cap}')", 'order_creation', 'payment_capture' ],
	[ 'stock_commit', "SELECT checkout_advance(%d, 'ks')", 'payment_capture', 'stock_commit' ]);

my $lock;
for my $step (@steps)
{
	my ($point, $call, $before, $after) = @$step;
	my $sql = sprintf($call, $lock // 0);
	my $was = lock_row('kcart');
	ok(kill_inside($point, $sql), "$point: the backend was held inside the step and killed");
	is(lock_row('kcart'), $was, "$point: after crash recovery the lock is as before the call ($was)");
	is($node->safe_psql('postgres', LEDGER_SQL), '', "$point: ledger equals the held reservations, checkout_verify() empty");
	$node->safe_psql('postgres', $sql);
	$lock //= $node->safe_psql('postgres', "SELECT lock_id FROM checkout.locks WHERE cart_id = 'kcart'");
	like(lock_row('kcart'), qr/^$lock:(active|completed):\Q$after\E$/, "$point: the call made again completes the step");
}
is($node->safe_psql('postgres', "SELECT count(*) FROM checkout.orders WHERE lock_id = $lock AND status = 'created'"), '1',
	'the checkout killed in every phase completed with one order');

# rollbacks: a cancel killed while it releases stock, and while it records a refund
my $c1 = $node->safe_psql('postgres', qq{SELECT (checkout_advance(lock_id, 'ks', until => 'price_lock')).lock_id
	FROM checkout_start('kcart-cancel', 'ks', '$lines2')});
ok(kill_inside('release', "SELECT checkout_cancel($c1, 'ks')"), 'cancel: held while releasing stock, killed');
is(lock_row('kcart-cancel'), "$c1:active:price_lock", 'cancel: the lock is still active with its reservations');
is($node->safe_psql('postgres', LEDGER_SQL), '', 'cancel: ledger whole');
is($node->safe_psql('postgres', "SELECT state FROM checkout_cancel($c1, 'ks')"), 'cancelled', 'cancel: made again, it cancels');

my $c2 = $node->safe_psql('postgres', qq{SELECT (checkout_advance(lock_id, 'ks', '$pay{auth}', until => 'order_creation')).lock_id
	FROM checkout_start('kcart-refund', 'ks', '$lines2')});
$node->safe_psql('postgres', "SELECT checkout_advance($c2, 'ks', '$pay{cap}', until => 'payment_capture')");
ok(kill_inside('refund', "SELECT checkout_cancel($c2, 'ks')"), 'refund: held while recording the refund, killed');
is($node->safe_psql('postgres', "SELECT count(*) FROM checkout.compensations WHERE lock_id = $c2"), '0', 'refund: no compensation half-written');
is($node->safe_psql('postgres', LEDGER_SQL), '', 'refund: ledger whole');
$node->safe_psql('postgres', "SELECT checkout_cancel($c2, 'ks')");
is($node->safe_psql('postgres', "SELECT kind FROM checkout.compensations WHERE lock_id = $c2"), 'refund_required',
	'refund: made again, exactly one refund_required');

# --- immediate shutdown during a sweep ---------------------------------------

my $sweeper_pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkout sweeper'});
$node->safe_psql('postgres', "INSERT INTO hold_points VALUES ('release', $sweeper_pid)");
my $due = $node->safe_psql('postgres', qq{SELECT (checkout_advance(lock_id, 'ks', until => 'price_lock')).lock_id
	FROM checkout_start('kcart-sweep', 'ks', '$lines2', ttl => interval '1 second')});
ok($node->poll_query_until('postgres', qq{SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $sweeper_pid}),
	'sweep: the sweeper is inside the expiry of the due lock');
$node->stop('immediate');
$node->start;
# the new sweeper (another pid, not armed) sweeps at start
ok($node->poll_query_until('postgres', "SELECT state = 'expired' FROM checkout.locks WHERE lock_id = $due"),
	'sweep: after the immediate shutdown the restarted sweeper expires the lock');
is($node->safe_psql('postgres', "SELECT count(*) FROM checkout.events WHERE lock_id = $due AND event = 'expired'"), '1',
	'sweep: once');
is($node->safe_psql('postgres', LEDGER_SQL), '', 'sweep: ledger whole, checkout_verify() empty');
is($node->safe_psql('postgres', 'SELECT sum(reserved) FROM checkout.inventory'), '0', 'no stock is held any more');

$node->stop;
done_testing();
