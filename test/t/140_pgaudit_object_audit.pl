# Issue 19, finding 7: pgaudit's object auditing (and sepgsql) sees what a
# statement touches through ExecutorCheckPerms_hook.  A row written without a
# statement never passes that hook, so with the hook set every write of the
# extension's tables must go through SQL: a checkout then logs an
# "AUDIT: OBJECT" line for each write of an audited table (the order, the
# reservations, the ledger, the lock, its lines, its price snapshots), and
# checkout.table_access() names the hook as the reason no table is written
# directly.  The 0.2.0 direct path wrote about ten rows per checkout that the
# audit log never showed.  Debian's postgresql-15-pgaudit provides pgaudit.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use CheckoutTest::Node;

my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
plan skip_all => "pgaudit is not installed in $pkglibdir (Debian: postgresql-15-pgaudit)"
  unless -e "$pkglibdir/pgaudit.so";

my $node = CheckoutTest::Node->start_new('audited',
	settings => {
		shared_preload_libraries => 'checkout,pgaudit',
		'pgaudit.role'           => 'auditor',
		'pgaudit.log'            => 'none',          # object auditing only
		'pgaudit.log_parameter'  => 'off',
		'checkout.log_events'    => 'none',
	},
	stock => [ [ 'PA-1', 10, 100 ], [ 'PA-2', 10, 40 ] ]);
my $started = $node->query_value('SELECT pg_postmaster_start_time()');

my @tables = qw(inventory inventory_stripes lock_lines locks orders price_snapshots reservations);
$node->safe_psql('postgres',
	'CREATE ROLE auditor NOLOGIN; GRANT SELECT, INSERT, UPDATE, DELETE ON '
	  . join(', ', map { "checkout.$_" } @tables) . ' TO auditor');

# no table on the direct path while the hook is set, and the reason says so
is( $node->query_value(
		"SELECT string_agg(table_name || ':' || direct, ',' ORDER BY table_name) FROM checkout.table_access()"),
	join(',', map { "$_:false" } @tables),
	'table_access: no table is read or written directly while ExecutorCheckPerms_hook is set');
is( $node->query_value(
		"SELECT count(*) FROM checkout.table_access() WHERE reason ~* '(ExecutorCheckPerms|hook)'"),
	scalar(@tables), 'table_access: each reason names the executor hook');

# one whole checkout of two skus, the log read from here on
sub checkout_once
{
	my ($cart, $settings) = @_;
	my $offset = -s $node->logfile;
	my $result = $node->safe_psql('postgres', qq{
		$settings
		SELECT lock_id AS l FROM checkout_start('$cart', 's',
		    '[{"line_id":"1","sku":"PA-1","quantity":2,"unit_price":100},
		      {"line_id":"2","sku":"PA-2","quantity":1,"unit_price":40}]') \\gset
		SELECT state, phase FROM checkout_advance(:l, 's', until => 'price_lock');
		SELECT state, phase FROM checkout_advance(:l, 's', '{"reference":"a","amount":240}', until => 'order_creation');
		SELECT state, phase, order_ref FROM checkout_advance(:l, 's', '{"reference":"c","amount":240}', until => 'stock_commit');
	});
	my $log = slurp_file($node->logfile, $offset);
	return ($result, $log);
}

# AUDIT: OBJECT,<statement>,<substatement>,<class>,<command>,<object type>,<object>,...
sub audited
{
	my ($log, $command, $table) = @_;
	my @lines = grep { /AUDIT: OBJECT,\d+,\d+,WRITE,\Q$command\E,TABLE,checkout\.\Q$table\E,/ }
	  split /\n/, $log;
	return scalar @lines;
}

for my $way ([ 'direct_access on', 'SET checkout.direct_access = on;' ],
	[ 'direct_access off', 'SET checkout.direct_access = off;' ])
{
	my ($name, $settings) = @$way;
	my $cart = $name =~ /on$/ ? 'pa-on' : 'pa-off';
	my ($result, $log) = checkout_once($cart, $settings);
	like($result, qr/completed\|stock_commit\|CO-\d+\s*$/, "$name: the checkout completes");
	ok(audited($log, 'INSERT', 'orders') >= 1,       "$name: the order's INSERT is audited");
	ok(audited($log, 'INSERT', 'reservations') >= 1, "$name: the reservations' INSERT is audited");
	ok(audited($log, 'DELETE', 'reservations') >= 1, "$name: the reservations' DELETE (the sale) is audited");
	ok(audited($log, 'UPDATE', 'inventory') >= 2,    "$name: the ledger's UPDATEs (reserve, sell) are audited");
	ok(audited($log, 'INSERT', 'lock_lines') >= 1,   "$name: the lines' INSERT is audited");
	ok(audited($log, 'INSERT', 'price_snapshots') >= 1, "$name: the price snapshots' INSERT is audited");
	ok(audited($log, 'INSERT', 'locks') >= 1,        "$name: the lock's INSERT is audited");
	ok(audited($log, 'UPDATE', 'locks') >= 1,        "$name: the lock's UPDATEs are audited");
	note join("\n", grep { /AUDIT: OBJECT/ } split /\n/, $log);
}

# the rows both checkouts left
is( $node->query_value(
		"SELECT string_agg(sku || ':' || on_hand || ':' || reserved, ',' ORDER BY sku) FROM checkout.inventory"),
	'PA-1:6:0,PA-2:8:0', 'both checkouts sold their units, nothing stays reserved');
is($node->query_value("SELECT count(*) FROM checkout.orders WHERE status = 'created'"),
	'2', 'two orders');

is($node->query_value('SELECT pg_postmaster_start_time()'), $started, 'the server never restarted');

# the hook gone (pgaudit no longer preloaded): the tables are direct again
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'checkout'\n");
$node->restart;
is( $node->query_value(
		"SELECT string_agg(table_name || ':' || direct, ',' ORDER BY table_name) FROM checkout.table_access()"),
	join(',', map { "$_:true" } @tables),
	'table_access: without pgaudit every table is direct again');
$node->stop;
done_testing();
