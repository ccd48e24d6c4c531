# PgBouncer in transaction pooling mode: 32 pgbench clients share 8 server
# connections and run whole checkouts (and cancels, and abandoned carts the
# worker expires), each statement its own transaction, so one checkout's
# steps land on different server connections.  No error, the ledger whole,
# and no session state: no advisory lock or named prepared statement is ever
# left on a server connection, no temporary table exists.  NOTIFY reaches a
# LISTEN held on a direct connection.
use strict;
use warnings;
use CheckoutTest::HA qw(free_port ledger_report LEDGER_SQL);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use Time::HiRes qw(time usleep);

my ($pgbouncer) = grep { -x } map { "$_/pgbouncer" } split(/:/, $ENV{PATH}), '/usr/sbin';
die 'pgbouncer not found: install pgbouncer' unless $pgbouncer;

my $clients = 32;
my $servers = 8;
my $per_client = 12;
my $on_hand0 = 100_000;

my $node = PostgreSQL::Test::Cluster->new('pooled');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'checkout'
checkout.database = 'shop'
# completed is opt-in: the default NOTIFYs only what a call did not tell its caller
checkout.notify_events = 'completed,void_required,refund_required,expired'
max_connections = 40
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', qq{
	CREATE EXTENSION checkout;
	INSERT INTO checkout.inventory (sku, on_hand, unit_price)
	SELECT 'S-' || g, $on_hand0, 100 FROM generate_series(1, 20) g;
	-- one row per checkout: the server connection (pid) of each step, and
	-- what session state that connection held at the last one
	CREATE TABLE pool_trace (lock_id bigint PRIMARY KEY, pids int[], prepared int, advisory int);
});

# short paths: Unix socket paths are limited to 107 bytes
my $dir = PostgreSQL::Test::Utils::tempdir_short();
my $port = free_port($dir);
my $host = $node->host;
my $node_port = $node->port;
open my $ini, '>', "$dir/pgbouncer.ini" or die $!;
print $ini <<"EOF";
[databases]
shop = host=$host port=$node_port dbname=shop user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $dir
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $servers
max_db_connections = $servers
max_client_conn = 200
server_reset_query =
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
admin_users = postgres
EOF
close $ini;
open my $users, '>', "$dir/userlist.txt" or die $!;
print $users qq{"postgres" ""\n};
close $users;

my $bouncer = IPC::Run::start([ $pgbouncer, "$dir/pgbouncer.ini" ], '>', "$dir/stdout.log", '2>&1');
END { $bouncer->kill_kill if $bouncer && $bouncer->pumpable; }

my $via_pool = "host=127.0.0.1 port=$port dbname=shop user=postgres";
my $ready = 0;
for (1 .. 100)
{
	my ($out, $err);
	IPC::Run::run([ 'psql', '-X', '-At', '-d', $via_pool, '-c', 'SELECT 1' ], '>', \$out, '2>', \$err);
	if (($out // '') =~ /^1$/m) { $ready = 1; last }
	usleep(100_000);
}
ok($ready, 'PgBouncer answers in transaction pooling mode');

# a direct connection LISTENs (a pooled one could not: the next
# transaction may run on another server connection)
my ($lin, $lout, $lerr) = ('', '', '');
my $listener = IPC::Run::start([ 'psql', '-X', '-At', '-d', $node->connstr('shop') ], \$lin, \$lout, \$lerr);
$lin .= "LISTEN checkout_events;\nSELECT 'listening';\n";
$listener->pump until $lout =~ /listening/;

my %scripts = (
	# a whole checkout, one transaction per step
	checkout => q{
\set cart :client_id * 1000000000 + random(1, 999999999)
\set sku1 random(1, 10)
\set sku2 random(11, 20)
\set q random(1, 3)
SELECT lock_id, pg_backend_pid() AS p1 FROM checkout_start('pb-' || :cart, 'sess-' || :client_id,
  jsonb_build_array(jsonb_build_object('line_id', '1', 'sku', 'S-' || :sku1, 'quantity', :q::int, 'unit_price', 100),
                    jsonb_build_object('line_id', '2', 'sku', 'S-' || :sku2, 'quantity', 1, 'unit_price', 100))) \gset
SELECT total, pg_backend_pid() AS p2 FROM checkout_advance(:lock_id, 'sess-' || :client_id, until => 'price_lock') \gset
SELECT state, pg_backend_pid() AS p3 FROM checkout_advance(:lock_id, 'sess-' || :client_id,
  jsonb_build_object('reference', 'auth-' || :lock_id, 'amount', :total::bigint), until => 'payment_authorization') \gset
SELECT state, pg_backend_pid() AS p4 FROM checkout_advance(:lock_id, 'sess-' || :client_id,
  jsonb_build_object('reference', 'cap-' || :lock_id, 'amount', :total::bigint), until => 'stock_commit') \gset
INSERT INTO pool_trace VALUES (:lock_id, ARRAY[:p1, :p2, :p3, :p4]::int[],
  (SELECT count(*) FROM pg_prepared_statements),
  (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()));
},
	# reserved, then cancelled with rollback
	cancel => q{
\set cart :client_id * 1000000000 + random(1, 999999999)
\set sku random(1, 20)
SELECT lock_id FROM checkout_start('pc-' || :cart, 'sess-' || :client_id,
  jsonb_build_array(jsonb_build_object('line_id', '1', 'sku', 'S-' || :sku, 'quantity', 2, 'unit_price', 100))) \gset
SELECT total FROM checkout_advance(:lock_id, 'sess-' || :client_id, until => 'price_lock') \gset
SELECT checkout_advance(:lock_id, 'sess-' || :client_id, jsonb_build_object('reference', 'auth-' || :lock_id, 'amount', :total::bigint));
SELECT checkout_cancel(:lock_id, 'sess-' || :client_id);
},
	# reserved and abandoned: the worker expires it
	abandon => q{
\set cart :client_id * 1000000000 + random(1, 999999999)
\set sku random(1, 20)
SELECT lock_id FROM checkout_start('pa-' || :cart, 'sess-' || :client_id,
  jsonb_build_array(jsonb_build_object('line_id', '1', 'sku', 'S-' || :sku, 'quantity', 1, 'unit_price', 100)),
  ttl => interval '1 second') \gset
SELECT checkout_advance(:lock_id, 'sess-' || :client_id, until => 'price_lock');
});

my @script_args;
for my $name (sort keys %scripts)
{
	my $file = "$dir/$name.sql";
	open my $fh, '>', $file or die $!;
	print $fh $scripts{$name};
	close $fh;
	push @script_args, '-f', "$file@" . ($name eq 'checkout' ? 8 : 1);
}

my $transactions = 0;
for my $mode (qw(simple extended))
{
	my ($out, $err) = ('', '');
	my $t0 = time;
	IPC::Run::run([ 'pgbench', '-n', '-M', $mode, '-c', $clients, '-j', 2, '-t', $per_client,
		@script_args, $via_pool ], '>', \$out, '2>', \$err);
	my $n = $clients * $per_client;
	$transactions += $n;
	like($out, qr{number of transactions actually processed: $n/$n}, "-M $mode: $clients clients through $servers server connections: $n scripts processed");
	like($out, qr{number of failed transactions: 0 }, "-M $mode: none failed");
	is(join("\n", grep { !/^pgbench \(/ } split /\n/, $err), '', "-M $mode: no error printed");
	note(sprintf('-M %s: %d scripts in %.1fs', $mode, $n, time - $t0));
}

# the abandoned carts fall due within a second; the worker expires them
ok($node->poll_query_until('shop', q{SELECT count(*) = 0 FROM checkout.locks WHERE state = 'active'}),
	'no lock stays active: the worker expired the abandoned ones');

my $by_kind = $node->safe_psql('shop', q{
	SELECT string_agg(k || ':' || s || '=' || n, ' ' ORDER BY k, s)
	FROM (SELECT left(cart_id, 2) AS k, state AS s, count(*) AS n FROM checkout.locks GROUP BY 1, 2) c});
unlike($by_kind, qr/pb:(?!completed)|pc:(?!cancelled)|pa:(?!expired)/,
	"every checkout completed, every cancel cancelled, every abandoned cart expired ($by_kind)");
my ($completed) = $by_kind =~ /pb:completed=(\d+)/;
is($node->safe_psql('shop', 'SELECT count(*) FROM pool_trace'), $completed, 'each completed checkout left its trace');

is($node->safe_psql('shop', LEDGER_SQL), '', 'ledger whole, checkout_verify() empty');
my ($sold, $reserved, $unaccounted) = split /:/, ledger_report(sub { $node->safe_psql('shop', $_[0]) }, $on_hand0);
is($unaccounted, 0, "every unit accounted for ($sold sold, $reserved reserved)");
is($node->safe_psql('shop', q{SELECT count(*) FROM checkout.compensations c JOIN checkout.locks l USING (lock_id)
	WHERE l.cart_id LIKE 'pc-%' AND c.kind = 'void_required'}),
	$node->safe_psql('shop', q{SELECT count(*) FROM checkout.locks WHERE cart_id LIKE 'pc-%'}),
	'every cancelled authorisation has its void_required compensation');

# no session state: steps of one checkout ran on different server connections
my $spread = $node->safe_psql('shop', q{
	SELECT count(*) FILTER (WHERE (SELECT count(DISTINCT p) FROM unnest(pids) p) > 1) || ':' ||
	       (SELECT count(DISTINCT p) FROM pool_trace, unnest(pids) p)
	FROM pool_trace});
my ($moved, $backends) = split /:/, $spread;
ok($moved > $completed / 4, "$moved of $completed checkouts moved between server connections between steps");
ok($backends <= $servers, "all ran on $backends server connections (pool of $servers)");
is($node->safe_psql('shop', q{SELECT max(prepared) || ':' || max(advisory) FROM pool_trace}), '0:0',
	'no server connection ever held a named prepared statement or an advisory lock after a checkout step');
is($node->safe_psql('shop', q{SELECT count(*) FROM pg_class WHERE relpersistence = 't'}), '0', 'no temporary table exists');

# NOTIFY: the direct LISTEN got a "completed" for each completed checkout
# (psql prints what arrived when it runs its next command and at exit)
$lin .= "SELECT 'again';\n\\q\n";
$listener->finish;
my $notified = () = $lout =~ /notification "checkout_events" with payload "\{"event": ?"completed"/g;
is($notified, $completed, 'the LISTEN on a direct connection received a notification per completed checkout');

$bouncer->signal('TERM');
$bouncer->finish;
$node->stop;
done_testing();
