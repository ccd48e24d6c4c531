# CheckoutTest::HA — shared pieces of the high-availability TAP tests (100-130):
# ports of our own, the ledger invariants, and a checkout client that
# reconnects and retries the way an application does.
package CheckoutTest::HA;

use strict;
use warnings;
use Exporter 'import';
use IO::Socket::INET;
use IPC::Run;
use Time::HiRes qw(time usleep);

our @EXPORT_OK = qw(free_port ledger_report checkout_attempt LEDGER_SQL);

# Servers these tests start themselves (pg_autoctl nodes, PgBouncer) take
# ports from this range; each port is checked free on 127.0.0.1 and by
# socket file, and remembered so one test never hands it out twice.
my %taken;

sub free_port
{
	my ($socket_dir) = @_;
	for my $port (7300 .. 7499)
	{
		next if $taken{$port};
		next if -e "/tmp/.s.PGSQL.$port" || -e "/var/run/postgresql/.s.PGSQL.$port";
		next if defined $socket_dir && -e "$socket_dir/.s.PGSQL.$port";
		my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
			Proto => 'tcp', ReuseAddr => 0, Listen => 1);
		next unless $s;
		close $s;
		$taken{$port} = 1;
		return $port;
	}
	die 'no free port in 7300-7499';
}

# One row per broken promise; none when the ledger is whole.  The ledger's
# reserved equals what active locks hold, no finished lock holds stock, and
# on_hand + units sold by completed locks is the stock loaded (on_hand0).
use constant LEDGER_SQL => q{
	SELECT 'reserved ' || i.sku || ': ledger ' || i.reserved || ', active locks hold ' ||
	       COALESCE((SELECT sum(r.quantity) FROM checkout.reservations r
	                 JOIN checkout.locks l USING (lock_id)
	                 WHERE r.sku = i.sku AND l.state = 'active'), 0)
	FROM checkout.inventory i
	WHERE i.reserved <> COALESCE((SELECT sum(r.quantity) FROM checkout.reservations r
	                              JOIN checkout.locks l USING (lock_id)
	                              WHERE r.sku = i.sku AND l.state = 'active'), 0)
	UNION ALL
	SELECT 'lock ' || r.lock_id || ' is ' || l.state || ' but holds ' || r.quantity || ' of ' || r.sku
	FROM checkout.reservations r JOIN checkout.locks l USING (lock_id)
	WHERE l.state <> 'active'
	UNION ALL
	SELECT 'verify: ' || invariant || ' ' || subject || ' ' || detail FROM checkout_verify()
};

# Units accounted for: per sku, on_hand now + units sold by completed locks
# must equal the stock loaded.  Returns "sold:reserved:unaccounted" summed.
sub ledger_report
{
	my ($psql, $on_hand0) = @_;
	return $psql->(qq{
		SELECT sum(sold) || ':' || sum(i.reserved) || ':' || sum($on_hand0 - i.on_hand - sold)
		FROM checkout.inventory i,
		     LATERAL (SELECT COALESCE(sum(ll.quantity), 0) AS sold
		              FROM checkout.lock_lines ll JOIN checkout.locks l USING (lock_id)
		              WHERE ll.sku = i.sku AND l.state = 'completed') s});
}

# A whole checkout as an application runs it, one autocommit statement per
# request: start (with an idempotency key), advance to price_lock, authorise,
# capture through stock_commit.  Every step is safe to repeat: the key
# returns the lock a lost attempt made, `until` skips phases already done.
my $checkout_script = q{
\set VERBOSITY verbose
\set ON_ERROR_STOP 1
SELECT lock_id FROM checkout_start(:'cart', :'sess', :'lines'::jsonb, idempotency_key => :'idem') \gset
\echo step started :lock_id
SELECT total FROM checkout_advance(:lock_id, :'sess', until => 'price_lock') \gset
SELECT state, phase FROM checkout_advance(:lock_id, :'sess',
    pg_catalog.jsonb_build_object('reference', 'auth-' || :'idem', 'amount', :total),
    until => 'payment_authorization') \gset
\echo step authorised :state :phase
SELECT state, order_ref FROM checkout_advance(:lock_id, :'sess',
    pg_catalog.jsonb_build_object('reference', 'cap-' || :'idem', 'amount', :total),
    until => 'stock_commit') \gset
\echo step finished :lock_id :state :order_ref
};

# checkout_attempt(CONNSTR, CART, SESSION, KEY, LINES_JSON) runs one attempt
# in a fresh connection; returns { ok, lock_id, state, order_ref, error }.
# error is the SQLSTATE of a server error, 'connect' when no read-write
# server could be reached, 'lost' (08006) when the connection broke.
sub checkout_attempt
{
	my ($connstr, $cart, $sess, $key, $lines) = @_;
	my ($out, $err) = ('', '');
	my @cmd = ('psql', '-X', '-q', '-At', '-d', $connstr,
		'-v', "cart=$cart", '-v', "sess=$sess", '-v', "idem=$key", '-v', "lines=$lines");
	my $script = $checkout_script;
	IPC::Run::run(\@cmd, '<', \$script, '>', \$out, '2>', \$err);
	my %r = (ok => 0, out => $out, stderr => $err);
	$r{lock_id} = $1 if $out =~ /^step started (\d+)$/m;
	if ($out =~ /^step finished (\d+) (\S+) (\S+)$/m)
	{
		@r{qw(lock_id state order_ref)} = ($1, $2, $3);
		$r{ok} = 1;
		return \%r;
	}
	if ($err =~ /^(?:psql:[^\n]*)?ERROR:\s+([0-9A-Z]{5}):/m)
	{
		$r{error} = $1;
	}
	elsif ($err =~ /FATAL:\s+([0-9A-Z]{5}):/)
	{
		$r{error} = $1;
	}
	elsif ($err =~ /connection to server .* failed|could not connect|session is read-only|server is in hot standby/)
	{
		$r{error} = 'connect';
	}
	elsif ($err =~ /server closed the connection|connection to server was lost|terminating connection/)
	{
		$r{error} = 'lost';
	}
	else
	{
		$r{error} = 'other: ' . (split /\n/, $err)[0] // 'no output';
	}
	return \%r;
}

1;
