# Automatic failover under load with pg_auto_failover: a monitor and two data
# nodes (synchronous replication as pg_auto_failover sets it up, checkout
# preloaded on both).  Clients run whole checkouts through a multi-host
# connection string with target_session_attrs=read-write, reconnecting and
# retrying with their idempotency key; the primary is lost (kill -9 of its
# pg_autoctl and postmaster; then `pg_autoctl stop --immediate` of the next
# primary); the monitor promotes the secondary.  After each failover: no
# commit a client saw is lost, the ledger is whole, locks that fell due while
# there was no primary are swept by the new one right after promotion, and
# the old primary rejoins as a standby on which no sweeper runs.
#
# Knobs (make failover sets the long form): CHECKOUT_FAILOVER_CLIENTS (4),
# CHECKOUT_FAILOVER_LOAD (seconds of load before and after each fault, 3),
# CHECKOUT_FAILOVER_FAULTS (space list of kill9, stop_immediate,
# postmaster_only; default "kill9 stop_immediate"),
# CHECKOUT_FAILOVER_MONITOR_DEFAULTS=1 keeps the monitor's production timeouts
# (20 s to call a node unhealthy, 30 s to wait for a lost primary to demote).
use strict;
use warnings;
use CheckoutTest::HA qw(free_port ledger_report checkout_attempt LEDGER_SQL);
use File::Temp ();
use IPC::Run;
use POSIX ();
use Test::More;
use Time::HiRes qw(time usleep sleep);

my $clients = $ENV{CHECKOUT_FAILOVER_CLIENTS} // 4;
my $load_seconds = $ENV{CHECKOUT_FAILOVER_LOAD} // 3;
my @faults = split ' ', ($ENV{CHECKOUT_FAILOVER_FAULTS} // 'kill9 stop_immediate');
my $production_timeouts = $ENV{CHECKOUT_FAILOVER_MONITOR_DEFAULTS} // 0;
my $on_hand0 = 1_000_000;
my @skus = map { "HA-$_" } 1 .. 5;

my ($pg_autoctl) = grep { -x } map { "$_/pg_autoctl" } split /:/, $ENV{PATH};
die 'pg_autoctl not found: install postgresql-15-auto-failover' unless $pg_autoctl;
my $bindir = `pg_config --bindir`;
chomp $bindir;

# short paths: Unix socket paths are limited to 107 bytes
my $base = File::Temp::tempdir('ckha_XXXX', TMPDIR => 1, CLEANUP => !$ENV{CHECKOUT_HA_KEEP});
$ENV{XDG_CONFIG_HOME} = "$base/config";
$ENV{XDG_DATA_HOME} = "$base/share";
$ENV{XDG_RUNTIME_DIR} = "$base/run";
mkdir "$base/run", 0700;
$ENV{PGHOST} = $base;    # pg_autoctl's own local connections
delete $ENV{$_} for qw(PGPORT PGDATABASE PGUSER);

my %keeper;              # pgdata => pid of its `pg_autoctl run`

sub logf { my ($name) = @_; return "$base/$name.log" }

sub run_cmd
{
	my (@cmd) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err)
	  or die "@cmd failed:\n$out$err";
	return $out;
}

sub psql_at
{
	my ($port, $db, $sql) = @_;
	my $out = run_cmd('psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $base, '-p', $port, '-d', $db, '-c', $sql);
	chomp $out;
	return $out;
}

sub try_psql
{
	my ($port, $db, $sql) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-At', '-h', $base, '-p', $port, '-d', $db, '-c', $sql ],
		'>', \$out, '2>', \$err) or return undef;
	chomp $out;
	return $out;
}

sub start_keeper
{
	my ($pgdata) = @_;
	my $pid = fork // die "fork: $!";
	if ($pid == 0)
	{
		open STDOUT, '>>', logf((split m{/}, $pgdata)[-1]) or POSIX::_exit(127);
		open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
		{ exec $pg_autoctl, 'run', '--pgdata', $pgdata }
		POSIX::_exit(127);    # never run the parent's END block in a child
	}
	$keeper{$pgdata} = $pid;
	return $pid;
}

sub reap
{
	my ($pid) = @_;
	return waitpid($pid, POSIX::WNOHANG()) != 0;
}

sub children_of
{
	my ($ppid) = @_;
	my @kids;
	for my $stat (glob '/proc/[0-9]*/stat')
	{
		open my $fh, '<', $stat or next;
		my $line = <$fh> // next;
		push @kids, $1 if $line =~ /^(\d+) \(.*\) \S (\d+)/ && $2 == $ppid;
	}
	return @kids;
}

sub postmaster_pid
{
	my ($pgdata) = @_;
	open my $fh, '<', "$pgdata/postmaster.pid" or return undef;
	my $pid = <$fh>;
	chomp $pid;
	return $pid;
}

my ($mon_port, @node_port, @node_dir);
my $monitor_dir = "$base/monitor";

# Every run stops what it started, also when it dies half way.
END
{
	my $failed = $? || !Test::More->builder->is_passing;
	local $?;
	if ($failed)
	{
		for my $log (glob "$base/*.log")
		{
			open my $fh, '<', $log or next;
			my @lines = <$fh>;
			diag("---- last lines of $log ----\n", @lines[ -(@lines < 40 ? @lines : 40) .. -1 ]);
		}
	}
	for my $pgdata (grep { defined } @node_dir, $monitor_dir)
	{
		next unless -d $pgdata;
		system($pg_autoctl, 'stop', '--immediate', '--pgdata', $pgdata) if $keeper{$pgdata};
	}
	for my $pgdata (keys %keeper)
	{
		my $pid = $keeper{$pgdata};
		my $deadline = time + 20;
		usleep(100_000) while !reap($pid) && kill(0, $pid) && time < $deadline;
		kill 'KILL', $pid, children_of($pid) if kill 0, $pid;
	}
	for my $pgdata (grep { defined } @node_dir, $monitor_dir)
	{
		my $pm = postmaster_pid($pgdata);
		if ($pm && kill 0, $pm)
		{
			system("$bindir/pg_ctl", '-D', $pgdata, '-m', 'immediate', 'stop');
		}
	}
}

# --- the formation -------------------------------------------------------

# Our settings go after pg_auto_failover's include (line 1 of
# postgresql.conf), so they win over its defaults (which size
# shared_buffers for a dedicated machine).
sub initdb_with
{
	my ($pgdata, @lines) = @_;
	run_cmd("$bindir/initdb", '-D', $pgdata, '-U', 'postgres', '--auth=trust', '--no-sync',
		'-E', 'UTF8', '--locale=C.UTF-8');
	open my $fh, '>>', "$pgdata/postgresql.conf" or die $!;
	print $fh join("\n", "listen_addresses = '127.0.0.1'", "unix_socket_directories = '$base'",
		'shared_buffers = 32MB', 'work_mem = 4MB', 'maintenance_work_mem = 16MB',
		'effective_cache_size = 128MB', 'logging_collector = off', 'fsync = off',
		"log_line_prefix = '%m [%p] %q%u@%d '", @lines), "\n";
	close $fh;
}

$mon_port = free_port($base);
@node_port = (free_port($base), free_port($base));
@node_dir = ("$base/node1", "$base/node2");

initdb_with($monitor_dir, $production_timeouts ? () : (
	# a lost node is called unhealthy after 3 s, and a primary that cannot
	# confirm its demotion is given 5 s (production: 20 s and 30 s)
	'pgautofailover.health_check_period = 1000',
	'pgautofailover.health_check_timeout = 1000',
	'pgautofailover.health_check_retry_delay = 500',
	'pgautofailover.health_check_max_retries = 1',
	'pgautofailover.node_considered_unhealthy_timeout = 3000',
	'pgautofailover.primary_demote_timeout = 5000'));
run_cmd($pg_autoctl, 'create', 'monitor', '--pgdata', $monitor_dir, '--pgport', $mon_port,
	'--hostname', '127.0.0.1', '--auth', 'trust', '--no-ssl', '--pgctl', "$bindir/pg_ctl");
run_cmd($pg_autoctl, 'config', 'set', '--pgdata', $monitor_dir, 'postgresql.listen_addresses', '127.0.0.1');
start_keeper($monitor_dir);
my $monitor_uri = "postgres://autoctl_node\@127.0.0.1:$mon_port/pg_auto_failover?sslmode=disable";
wait_ready($mon_port, 'pg_auto_failover');

sub wait_ready
{
	my ($port, $db) = @_;
	for (1 .. 300)
	{
		return if defined try_psql($port, $db, 'SELECT 1');
		sleep 0.2;
	}
	die "the server on port $port did not start";
}

sub create_node
{
	my ($i) = @_;
	run_cmd($pg_autoctl, 'create', 'postgres', '--pgdata', $node_dir[$i], '--pgport', $node_port[$i],
		'--hostname', '127.0.0.1', '--listen', '127.0.0.1', '--auth', 'trust', '--no-ssl',
		'--pgctl', "$bindir/pg_ctl", '--monitor', $monitor_uri, '--dbname', 'shop',
		'--name', 'node' . ($i + 1));
	start_keeper($node_dir[$i]);
}

sub node_states
{
	my $rows = try_psql($mon_port, 'pg_auto_failover',
		"SELECT string_agg(nodename || '=' || reportedstate || '/' || goalstate, ' ' ORDER BY nodename) FROM pgautofailover.node");
	return $rows // '';
}

# the survivor is primary on its own (the lost node waits to be demoted)
sub wait_primary_alone
{
	my ($i) = @_;
	my $deadline = time + 60;
	while (time < $deadline)
	{
		return 1 if node_states() =~ /node${\($i + 1)}=wait_primary\/wait_primary/;
		sleep 0.25;
	}
	return 0;
}

sub wait_states
{
	my ($want, $seconds) = @_;
	my $deadline = time + $seconds;
	my $states;
	while (time < $deadline)
	{
		$states = node_states();
		return 1 if $states eq $want;
		sleep 0.25;
	}
	diag("formation is '$states', wanted '$want'");
	return 0;
}

# node1: our own initdb, checkout preloaded (pg_stat_statements is what
# pg_autoctl preloads on data nodes; keep it), then registered as primary
initdb_with($node_dir[0],
	"shared_preload_libraries = 'pg_stat_statements,checkout'",
	"checkout.database = 'shop'",
	'checkout.log_destination = both');
create_node(0);
ok(wait_states('node1=single/single', 60), 'node1 runs as a single primary');
wait_ready($node_port[0], 'shop');
psql_at($node_port[0], 'shop', 'CREATE EXTENSION checkout');
psql_at($node_port[0], 'shop', 'INSERT INTO checkout.inventory (sku, on_hand, unit_price) SELECT s, '
	  . "$on_hand0, 100 FROM unnest(ARRAY['" . join("','", @skus) . "']) s");
# node2 is cloned from node1 by pg_basebackup, postgresql.conf included; a
# checkpoint now keeps the backup's own (spread) checkpoint short
psql_at($node_port[0], 'postgres', 'CHECKPOINT');
create_node(1);
ok(wait_states('node1=primary/primary node2=secondary/secondary', 90), 'node2 follows as a synchronous standby');
is(psql_at($node_port[0], 'postgres', 'SHOW synchronous_standby_names'), 'ANY 1 (pgautofailover_standby_2)',
	'pg_auto_failover made the replication synchronous');
is(psql_at($node_port[1], 'postgres', 'SHOW shared_preload_libraries'), 'pg_stat_statements,checkout',
	'checkout is preloaded on the standby too');

my $connstr = "host=127.0.0.1,127.0.0.1 port=$node_port[0],$node_port[1] dbname=shop user=postgres "
  . 'target_session_attrs=read-write connect_timeout=3';

# --- the clients -----------------------------------------------------------

# Each client runs checkouts until the stop file appears and writes one line
# per finished checkout: id, lock_id, state, order_ref, attempts, the start of
# its first failed attempt and the end of its successful one, errors seen.
sub client_main
{
	my ($client, $round) = @_;
	srand($$ ^ time);
	open my $log, '>', "$base/client-$round-$client.log" or die $!;
	$log->autoflush(1);
	my $n = 0;
	while (!-e "$base/stop-$round")
	{
		$n++;
		my $key = "r$round-c$client-$n";
		my @lines = map {
			sprintf('{"line_id":"%d","sku":"%s","quantity":%d,"unit_price":100}', $_, $skus[ int rand @skus ], 1 + int rand 3)
		} 1 .. 2;
		my $lines = '[' . join(',', @lines) . ']';
		my ($attempts, $first_fail, %errors) = (0, undef);
		my $gave_up = time + 180;
		while (1)
		{
			my $t0 = time;
			$attempts++;
			my $r = checkout_attempt($connstr, "cart-$key", "sess-$key", $key, $lines);
			if ($r->{ok})
			{
				printf $log "%s %s %s %s %d %.3f %.3f %.3f %s\n", $key, $r->{lock_id}, $r->{state},
				  $r->{order_ref}, $attempts, $first_fail // 0, $t0, time,
				  join(',', map { "$_=$errors{$_}" } sort keys %errors) || '-';
				last;
			}
			$first_fail //= $t0;
			$errors{ $r->{error} }++;
			if ($r->{error} =~ /^other/ || time > $gave_up)
			{
				printf $log "%s %s gave_up - %d %.3f %.3f %.3f %s %s\n", $key, $r->{lock_id} // '-', $attempts,
				  $first_fail, $t0, time, $r->{error}, ($r->{stderr} =~ s/\s+/ /gr);
				last;
			}
			sleep 0.1;
		}
	}
	close $log;
	POSIX::_exit(0);
}

sub start_clients
{
	my ($round) = @_;
	my @pids;
	for my $c (1 .. $clients)
	{
		my $pid = fork // die "fork: $!";
		if ($pid == 0)
		{
			eval { client_main($c, $round) };
			print STDERR $@ if $@;
			POSIX::_exit(1);
		}
		push @pids, $pid;
	}
	return @pids;
}

sub stop_clients
{
	my ($round, @pids) = @_;
	open my $fh, '>', "$base/stop-$round" or die $!;
	close $fh;
	waitpid $_, 0 for @pids;
	my @rows;
	for my $c (1 .. $clients)
	{
		open my $log, '<', "$base/client-$round-$c.log" or die $!;
		while (<$log>)
		{
			chomp;
			my %r;
			@r{qw(key lock_id state order_ref attempts first_fail start end errors)} = split / /, $_, 9;
			push @rows, \%r;
		}
	}
	return @rows;
}

# --- faults ----------------------------------------------------------------

sub primary_index
{
	my $states = node_states();
	return 0 if $states =~ /node1=primary\/primary/;
	return 1 if $states =~ /node2=primary\/primary/;
	die "no primary in '$states'";
}

# The node is lost: its pg_autoctl (which would restart Postgres) and its
# postmaster are killed at once.
sub kill_node
{
	my ($i) = @_;
	my $keeper = $keeper{ $node_dir[$i] };
	my @pids = ($keeper, children_of($keeper), postmaster_pid($node_dir[$i]));
	kill 'KILL', @pids;
	waitpid $keeper, 0;
	delete $keeper{ $node_dir[$i] };
}

sub stop_node_immediate
{
	my ($i) = @_;
	run_cmd($pg_autoctl, 'stop', '--immediate', '--pgdata', $node_dir[$i]);
	waitpid $keeper{ $node_dir[$i] }, 0;
	delete $keeper{ $node_dir[$i] };
}

# Locks whose deadline falls while there is no primary: reserved, then
# abandoned with a TTL shorter than the outage.
sub abandon_locks
{
	my ($port, $round) = @_;
	return psql_at($port, 'shop', qq{
		SELECT string_agg((checkout_advance(s.lock_id, 'gone', until => 'price_lock')).lock_id::text, ',')
		FROM generate_series(1, 5) g,
		     LATERAL checkout_start('abandoned-$round-' || g, 'gone',
		         '[{"line_id":"1","sku":"$skus[0]","quantity":2,"unit_price":100}]', interval '2 seconds') s});
}

my %figures;
my $round = 0;
for my $fault (@faults)
{
	$round++;
	my $p = primary_index();
	my $s = 1 - $p;
	my $name = "round $round ($fault of node" . ($p + 1) . ')';
	my $max_lock_before = psql_at($node_port[$p], 'shop', 'SELECT COALESCE(max(lock_id), 0) FROM checkout.locks');

	my @pids = start_clients($round);
	sleep $load_seconds;
	my $abandoned = abandon_locks($node_port[$p], $round);
	my $t_fault = time;
	if ($fault eq 'kill9') { kill_node($p) }
	elsif ($fault eq 'stop_immediate') { stop_node_immediate($p) }
	elsif ($fault eq 'postmaster_only') { kill 'KILL', postmaster_pid($node_dir[$p]) }
	else { die "unknown fault $fault" }

	my $new = $fault eq 'postmaster_only' ? $p : $s;
	# writable: out of recovery, and pg_autoctl has lifted the
	# default_transaction_read_only it sets until the old primary is
	# known to be demoted (its split-brain guard)
	# (after a postmaster kill, either node may be the next primary)
	my @candidates = $fault eq 'postmaster_only' ? (0, 1) : ($new);
	my $t_writable;
	my $deadline = time + 180;
	while (!defined $t_writable && time < $deadline)
	{
		for my $i (@candidates)
		{
			my $w = try_psql($node_port[$i], 'shop',
				"SELECT NOT pg_is_in_recovery() AND current_setting('default_transaction_read_only') = 'off'");
			if (defined $w && $w eq 't') { ($t_writable, $new) = (time, $i); last }
		}
		sleep 0.1;
	}
	ok(defined $t_writable, "$name: node" . ($new + 1) . ' became writable');
	$t_writable //= time;
	if ($fault ne 'postmaster_only')
	{
		ok(wait_primary_alone($new),
			"$name: the monitor made node" . ($new + 1) . ' the primary');
	}
	sleep $load_seconds;
	my @rows = stop_clients($round, @pids);
	# Postgres killed alone is restarted in place by pg_autoctl, but its
	# keeper may report it down to the monitor first, which then fails over:
	# go on with whichever node the formation settles on as primary
	my $failed_over = 0;
	if ($fault eq 'postmaster_only')
	{
		my $settled = 0;
		my $until = time + 120;
		while (!$settled && time < $until)
		{
			my $states = node_states();
			$settled = $states eq 'node1=primary/primary node2=secondary/secondary'
			  || $states eq 'node1=secondary/secondary node2=primary/primary';
			sleep 0.25 unless $settled;
		}
		ok($settled, "$name: the formation settles with a primary and a secondary");
		$new = primary_index();
		$failed_over = $new != $p;
		note("$name: pg_auto_failover " . ($failed_over ? 'failed over' : 'kept the restarted primary'));
	}

	# the clients
	my @done = grep { $_->{state} ne 'gave_up' } @rows;
	my @gave_up = grep { $_->{state} eq 'gave_up' } @rows;
	is(scalar(@gave_up), 0, "$name: no client gave up a checkout")
	  or diag(join("\n", map { join ' ', @$_{qw(key errors)} } @gave_up));
	my @retried = grep { $_->{attempts} > 1 } @done;
	my ($outage) = sort { $b <=> $a } map { $_->{end} - $_->{first_fail} } @retried;
	ok(@retried > 0, "$name: clients saw the fault and retried " . scalar(@retried) . ' checkouts');
	my %errors;
	for (@rows) { $errors{$1} += $2 while $_->{errors} =~ /([^,=]+)=(\d+)/g }
	my $errors = join(', ', map { "$_ x$errors{$_}" } sort keys %errors);
	is(scalar(grep { $_->{state} ne 'completed' } @done), 0, "$name: every finished checkout completed");

	# every commit a client saw is on the new primary
	my @seen = map { $_->{lock_id} } @done;
	my $found = psql_at($node_port[$new], 'shop', 'SELECT count(*) FROM checkout.locks l JOIN checkout.orders o USING (lock_id) '
		  . "WHERE l.state = 'completed' AND o.status = 'created' AND l.lock_id = ANY ('{" . join(',', @seen) . "}'::bigint[])");
	is($found, scalar(@seen), "$name: all " . scalar(@seen) . ' checkouts the clients saw committed are completed with their order');
	my $dup = psql_at($node_port[$new], 'shop', qq{SELECT count(*) FROM (SELECT idempotency_key FROM checkout.locks
		WHERE idempotency_key LIKE 'r$round-%' GROUP BY 1 HAVING count(*) > 1) d});
	is($dup, '0', "$name: a retried checkout never made a second lock");

	# locks that fell due without a primary: swept right after promotion
	my $swept = 0;
	$deadline = time + 20;
	while (time < $deadline)
	{
		$swept = psql_at($node_port[$new], 'shop', "SELECT count(*) FROM checkout.locks WHERE lock_id IN ($abandoned) AND state = 'expired'");
		last if $swept == 5;
		sleep 0.2;
	}
	is($swept, 5, "$name: the 5 locks that fell due during the failover are expired");
	# measured from the moment the node took writes (or the deadline, if later)
	my $sweep_delay = psql_at($node_port[$new], 'shop', qq{
		SELECT round((extract(epoch FROM max(finished_at)) - greatest($t_writable, extract(epoch FROM max(expires_at))))::numeric, 2)
		FROM checkout.locks WHERE lock_id IN ($abandoned)});
	SKIP:
	{
		# the node that became writable first is not the one that swept
		skip "$name: the failover after the restart leaves no moment to measure from", 1 if $failed_over;
		ok($sweep_delay < 2, "$name: swept ${sweep_delay}s after the node became writable: the sweeper waited out the read-only fence and swept on the reload that lifted it");
	}
	is(psql_at($node_port[$new], 'shop', LEDGER_SQL), '', "$name: ledger whole, checkout_verify() empty");
	my ($sold, $reserved, $unaccounted) = split /:/, ledger_report(sub { psql_at($node_port[$new], 'shop', $_[0]) }, $on_hand0);
	is($unaccounted, 0, "$name: every unit accounted for ($sold sold, $reserved reserved)");
	my $new_ids = psql_at($node_port[$new], 'shop', qq{SELECT count(*) FROM checkout.locks
		WHERE idempotency_key LIKE 'r$round-%' AND lock_id <= $max_lock_before});
	is($new_ids, 0, "$name: the identity sequence handed out no used lock_id");

	# the lost node rejoins as a standby, where no sweeper runs
	if ($fault ne 'postmaster_only')
	{
		start_keeper($node_dir[$p]);
		ok(wait_states(join(' ', map { "node$_=" . ($_ - 1 == $new ? 'primary/primary' : 'secondary/secondary') } 1, 2), 120),
			"$name: node" . ($p + 1) . ' rejoined as a secondary');
	}
	my $standby = 1 - $new;
	is(psql_at($node_port[$standby], 'shop', q{SELECT pg_is_in_recovery() || ':' || count(*) FILTER (WHERE backend_type LIKE 'checkout%') FROM pg_stat_activity}),
		'true:0', "$name: no checkout worker on the standby node" . ($standby + 1));
	my ($one) = split /,/, $abandoned;
	is(psql_at($node_port[$standby], 'shop', "SELECT state FROM checkout_status($one, 'gone')"), 'expired',
		"$name: the standby serves checkout_status");
	is(psql_at($node_port[$standby], 'shop', 'SELECT (SELECT count(*) FROM checkout_verify()) || \':\' || (SELECT active_locks FROM checkout_monitor(1))'),
		'0:0', "$name: and checkout_verify() and checkout_monitor()");
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-At', '-h', $base, '-p', $node_port[$standby], '-d', 'shop', '-c', '\set VERBOSITY verbose', '-c',
		"SELECT checkout_start('on-standby', 's', '[{\"line_id\":\"1\",\"sku\":\"$skus[0]\",\"quantity\":1,\"unit_price\":100}]')" ],
		'>', \$out, '2>', \$err);
	like($err, qr/25006/, "$name: a write on the standby fails with 25006");

	$figures{$name} = sprintf('%d checkouts completed, %d retried, outage seen by clients %.1fs '
		  . '(fault to writable primary %.1fs%s), overdue locks swept %s, errors: %s; units: %d sold, %d reserved, %d unaccounted',
		scalar(@done), scalar(@retried), $outage // 0, $t_writable - $t_fault,
		$failed_over ? ', then pg_auto_failover failed over' : '',
		$failed_over ? 'by the new primary' : "${sweep_delay}s after", $errors || 'none',
		$sold, $reserved, $unaccounted);
}

diag("$_: $figures{$_}") for sort keys %figures;
done_testing();
