# postgres_exporter with monitoring/postgres_exporter/checkout.yaml, connected
# as the role of monitoring/role.sql, against a cluster with a known history:
#  - /metrics on 127.0.0.1 carries exactly the metrics the file declares, and
#    each figure equals what SQL returns (and what the history implies);
#  - the role reads those and nothing else of the extension;
#  - a Prometheus server scraping that exporter, with alerts.yml loaded,
#    answers every dashboard query with data, evaluates every alert rule
#    without error, and has CheckoutLocksOverdue pending for the overdue lock.
# The background worker sweeps another database: the overdue lock stays.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use CheckoutTest::Node;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use YAML::XS qw(LoadFile DumpFile);

my $monitoring = "$FindBin::Bin/../../monitoring";
my $http = HTTP::Tiny->new(timeout => 10);

my $node = CheckoutTest::Node->start_new('exporter',
	settings => { 'checkout.database' => 'not_this_one' },
	stock    => [ [ 'M-1', 100, 1000 ], [ 'M-DRIFT', 100, 1005 ], [ 'M-UP', 100, 2000 ], [ 'M-LOW', 1, 10 ] ]);
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub sql_as
{
	my ($role, $query) = @_;
	my ($out, $err);
	$node->psql('postgres', "SET ROLE $role; $query", stdout => \$out, stderr => \$err);
	return $err ? $err : $out;
}
for (1 .. 2)    # twice: the script may be run again
{
	my ($rc, $out, $err) = $node->psql('postgres', slurp_file("$monitoring/role.sql"), extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
	is($rc, 0, "role.sql runs (time $_)") or diag($err);
}

# --- a known history ------------------------------------------------------------
sub line { my ($sku, $q, $price) = @_; return qq{'[{"line_id":"1","sku":"$sku","quantity":$q,"unit_price":$price}]'}; }
sub pay { return qq{'{"reference":"$_[0]","amount":$_[1]}'}; }
sub start { my ($cart, $lines, $ttl) = @_; return sql("SELECT lock_id FROM checkout_start('$cart', 's', $lines" . ($ttl ? ", interval '$ttl'" : '') . ')'); }
sub advance { my ($lock, $payload, $until) = @_; return sql("SELECT state FROM checkout_advance($lock, 's', $payload, '$until')"); }
sub complete
{
	my ($cart, $lines, $total) = @_;
	my $lock = start($cart, $lines);
	advance($lock, pay("auth-$cart", $total), 'payment_authorization');
	return advance($lock, pay("cap-$cart", $total), 'stock_commit');
}
# 3 completed (one with a price drift warning: the cart said 1000, the price is 1005)
is(complete('done-1', line('M-1', 1, 1000), 1000), 'completed', 'completed 1');
is(complete('done-2', line('M-1', 2, 1000), 2000), 'completed', 'completed 2');
is(complete('done-drift', line('M-DRIFT', 1, 1000), 1005), 'completed', 'completed with a drift warning');
# 5 failed: KC010 at cart_validation, KC011 at inventory_reservation twice, KC012 at price_lock,
# KC013 at payment_authorization (leaves a void_required compensation)
is(advance(start('f-unknown', line('M-NONE', 1, 1)), "'{}'", 'price_lock'), 'failed', 'failed: unknown sku');
is(advance(start('f-short-1', line('M-LOW', 5, 10)), "'{}'", 'price_lock'), 'failed', 'failed: short of stock');
is(advance(start('f-short-2', line('M-LOW', 2, 10)), "'{}'", 'price_lock'), 'failed', 'failed: short of stock again');
is(advance(start('f-drift', line('M-UP', 1, 1000)), "'{}'", 'price_lock'), 'failed', 'failed: price drift');
is(advance(start('f-amount', line('M-1', 1, 1000)), pay('auth-wrong', 999), 'payment_authorization'), 'failed', 'failed: wrong amount');
# 1 cancelled after capture (a refund_required compensation)
my $refund = start('c-refund', line('M-1', 1, 1000));
advance($refund, pay('auth-r', 1000), 'order_creation');
advance($refund, pay('cap-r', 1000), 'payment_capture');
is(sql("SELECT state FROM checkout_cancel($refund, 's')"), 'cancelled', 'cancelled after capture');
# 1 expired on touch; 1 overdue (never touched); 1 active holding 4 units
my $expiring = start('x-expire', line('M-1', 1, 1000), '1 second');
my $overdue = start('x-overdue', line('M-1', 1, 1000), '1 second');
advance($overdue, "'{}'", 'price_lock');
advance(start('a-open', line('M-1', 4, 1000)), "'{}'", 'price_lock');
usleep(1_200_000);
is(advance($expiring, "'{}'", 'price_lock'), 'expired', 'expired on touch');

# --- the exporter -------------------------------------------------------------------
sub free_port
{
	for my $port (7500 .. 7599)
	{
		my $socket = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 1, ReuseAddr => 0)
		  or next;
		close $socket;
		return $port;
	}
	die 'no free port in 7500-7599';
}
sub wait_http
{
	my ($url) = @_;
	for (1 .. 100)
	{
		my $response = $http->get($url);
		return $response if $response->{success};
		usleep(100_000);
	}
	return undef;
}

my $exporter_port = free_port();
my ($exporter_out, $exporter_err) = ('', '');
local $ENV{DATA_SOURCE_NAME} = sprintf('host=%s port=%d user=checkout_exporter dbname=postgres sslmode=disable',
	$node->host, $node->port);
my $exporter = IPC::Run::start(
	[ 'prometheus-postgres-exporter', "--web.listen-address=127.0.0.1:$exporter_port",
	  "--extend.query-path=$monitoring/postgres_exporter/checkout.yaml", '--disable-default-metrics',
	  '--disable-settings-metrics', '--no-collector.database', '--no-collector.bgwriter' ],
	'>', \$exporter_out, '2>', \$exporter_err);

my $response = wait_http("http://127.0.0.1:$exporter_port/metrics");
ok($response, "the exporter serves /metrics on 127.0.0.1:$exporter_port") or diag($exporter_err);

# name => { "label=value,..." => value }
sub parse_metrics
{
	my ($text) = @_;
	my (%metrics, %types);
	for (split /\n/, $text)
	{
		$types{$1} = $2 if /^# TYPE (\w+) (\w+)/;
		next if /^#/ || !/^(\w+)(?:\{(.*)\})? (\S+)$/;
		my ($name, $labels, $value) = ($1, $2 // '', $3);
		my %l = $labels =~ /(\w+)="((?:[^"\\]|\\.)*)"/g;
		delete $l{server};
		$metrics{$name}{ join(',', map { "$_=$l{$_}" } sort keys %l) } = $value;
	}
	return (\%metrics, \%types);
}
my $oldest_age = q{SELECT extract(epoch FROM now() - min(created_at)) FROM checkout.locks WHERE state = 'active'};
my $before = sql($oldest_age);
my ($metrics, $types) = parse_metrics($http->get("http://127.0.0.1:$exporter_port/metrics")->{content});
my $after = sql($oldest_age);
is_deeply([ values %{ $metrics->{pg_exporter_user_queries_load_error} } ], [0], 'the queries file loaded');
is($metrics->{pg_exporter_last_scrape_error}{''}, 0, 'the scrape had no error');

# exactly the declared metrics, with their types
my $queries = LoadFile("$monitoring/postgres_exporter/checkout.yaml");
my %declared;
for my $query (keys %$queries)
{
	for (@{ $queries->{$query}{metrics} })
	{
		my ($column, $spec) = %$_;
		$declared{"${query}_$column"} = lc $spec->{usage} unless $spec->{usage} eq 'LABEL';
	}
}
is_deeply({ map { $_ => $types->{$_} } grep { /^checkout_/ } keys %$types }, \%declared,
	'/metrics has every declared checkout metric, with its type, and no other');

# each figure equals SQL's, and the history's
my %stats = split /\|/, sql(q{SELECT concat_ws('|', 'started_total', locks_total, 'price_drift_warnings_total', price_drift_warnings,
	'active_locks', locks_active, 'skus', skus, 'units_on_hand', units_on_hand, 'units_reserved', units_reserved,
	'reservations', reservations, 'open_compensations', compensations_open) FROM checkout.stats});
my %monitor = split /\|/, sql(q{SELECT concat_ws('|', 'overdue_locks', overdue_locks, 'last_hour_started', started,
	'last_hour_completed', completed, 'last_hour_failed', failed, 'last_hour_expired', expired, 'last_hour_cancelled', cancelled,
	'last_hour_success_ratio', success_rate, 'last_hour_duration_p50_seconds', extract(epoch FROM duration_p50),
	'last_hour_duration_p95_seconds', extract(epoch FROM duration_p95), 'last_hour_duration_max_seconds', extract(epoch FROM duration_max),
	'last_hour_price_drift_warnings', price_drift_warnings) FROM checkout_monitor(1)});
my %sql = (%stats, %monitor);
is_deeply({ map { $_ => $sql{$_} + 0 } keys %sql }, { map { $_ => $metrics->{"checkout_$_"}{''} + 0 } keys %sql },
	'every one-row figure equals SQL (checkout.stats, checkout_monitor(1))');
is_deeply({ map { $_ => $metrics->{"checkout_$_"}{''} + 0 } qw(started_total active_locks overdue_locks units_reserved
	open_compensations last_hour_started last_hour_completed last_hour_failed last_hour_expired
	last_hour_cancelled last_hour_success_ratio) },
	{ started_total => 12, active_locks => 2, overdue_locks => 1, units_reserved => 5, open_compensations => 2,
	  last_hour_started => 12, last_hour_completed => 3, last_hour_failed => 5,
	  last_hour_expired => 1, last_hour_cancelled => 1, last_hour_success_ratio => 0.3 },
	'... and the known history: 12 started, 3 completed, 5 failed, 1 expired, 1 cancelled, 2 active (1 overdue)');
my $age = $metrics->{checkout_oldest_active_lock_age_seconds}{''};
ok($age >= $before && $age <= $after, "oldest active lock age $age s is between SQL's before ($before) and after ($after)");
is_deeply($metrics->{checkout_finished_total},
	{ 'outcome=completed' => 3, 'outcome=failed' => 5, 'outcome=expired' => 1, 'outcome=cancelled' => 1 },
	'checkout_finished_total by outcome');
my %by_phase = split /[|,]/, sql(q{SELECT string_agg(key || '|' || value, ',') FROM checkout_monitor(1), jsonb_each_text(failures_by_phase)});
is_deeply($metrics->{checkout_last_hour_phase_failures}, { map { ("phase=$_" => $by_phase{$_}) } keys %by_phase },
	'failures by phase equal SQL');
is_deeply($metrics->{checkout_last_hour_phase_failures},
	{ 'phase=cart_validation' => 2, 'phase=inventory_reservation' => 2, 'phase=price_lock' => 1, 'phase=payment_authorization' => 1 },
	'... and the history (the expiry counts at cart_validation, the phase it was waiting for)');
is_deeply($metrics->{checkout_last_hour_code_failures},
	{ 'code=KC010' => 1, 'code=KC011' => 2, 'code=KC012' => 1, 'code=KC013' => 1, 'code=KC015' => 1 },
	'failures by code');

# the role sees nothing else
like(sql_as('checkout_exporter', 'SELECT count(*) FROM checkout.locks'), qr/permission denied/, 'the exporter role cannot read locks');
like(sql_as('checkout_exporter', 'SELECT count(*) FROM checkout.compensations'), qr/permission denied/, '... nor compensations');
like(sql_as('checkout_exporter', 'SELECT * FROM checkout_verify()'), qr/permission denied/, '... nor run checkout_verify');
like(sql_as('checkout_exporter', "SELECT checkout_start('x', 'y', '[]')"), qr/permission denied/, '... nor take a lock');

# --- a Prometheus server on that exporter, with the alert rules ------------------
my $prometheus_port = free_port();
my $tmp = tempdir(CLEANUP => 1);
DumpFile("$tmp/prometheus.yml", {
	global => { scrape_interval => '1s', evaluation_interval => '1s' },
	rule_files => ["$monitoring/prometheus/alerts.yml"],
	scrape_configs => [ { job_name => 'checkout', static_configs => [ { targets => ["127.0.0.1:$exporter_port"] } ] } ] });
my ($prometheus_out, $prometheus_err) = ('', '');
my $prometheus = IPC::Run::start(
	[ 'prometheus', "--config.file=$tmp/prometheus.yml", "--storage.tsdb.path=$tmp/data",
	  "--web.listen-address=127.0.0.1:$prometheus_port" ],
	'>', \$prometheus_out, '2>', \$prometheus_err);
ok(wait_http("http://127.0.0.1:$prometheus_port/-/ready"), 'Prometheus is ready') or diag($prometheus_err);

sub query
{
	my ($promql) = @_;
	my $r = $http->get("http://127.0.0.1:$prometheus_port/api/v1/query?" . $http->www_form_urlencode({ query => $promql }));
	return $r->{success} ? decode_json($r->{content}) : { status => 'http error', error => $r->{content} };
}
sub wait_query    # until the query returns a sample
{
	my ($promql) = @_;
	for (1 .. 150)
	{
		my $r = query($promql);
		return 1 if $r->{status} eq 'success' && @{ $r->{data}{result} };
		usleep(100_000);
	}
	return 0;
}
ok(wait_query('checkout_started_total'), 'Prometheus scraped the exporter');
# more checkouts between scrapes, so that every rate() has something to show
is(complete('later-1', line('M-1', 1, 1000), 1000), 'completed', 'one more completed after the first scrapes');
is(advance(start('later-2', line('M-LOW', 9, 10)), "'{}'", 'price_lock'), 'failed', 'one more failed');
ok(wait_query('increase(checkout_finished_total{outcome="completed"}[1m]) > 0'), 'Prometheus saw the counters move');

my $dashboard = decode_json(do { local (@ARGV, $/) = "$monitoring/grafana/checkout.json"; <> });
for my $panel (@{ $dashboard->{panels} })
{
	for my $target (@{ $panel->{targets} })
	{
		(my $promql = $target->{expr}) =~ s/\$__rate_interval/1m/g;
		$promql =~ s/\$server/.+/g;
		my $r = query($promql);
		my @values = map { $_->{value}[1] } @{ $r->{data}{result} || [] };
		ok($r->{status} eq 'success' && @values && !grep({ $_ eq 'NaN' } @values),
			"panel \"$panel->{title}\" $target->{refId}: data (@values)") or diag(explain($r), "query: $promql");
	}
}

my $rules = decode_json($http->get("http://127.0.0.1:$prometheus_port/api/v1/rules")->{content});
my @alerting = map { @{ $_->{rules} } } @{ $rules->{data}{groups} };
is_deeply([ sort map { "$_->{name} $_->{health}" } @alerting ],
	[ 'CheckoutCompensationsGrowing ok', 'CheckoutLocksOverdue ok', 'CheckoutSuccessRateDrop ok' ],
	'Prometheus evaluates the three alert rules without error');
my $pending = 0;
for (1 .. 50)
{
	my $alerts = decode_json($http->get("http://127.0.0.1:$prometheus_port/api/v1/alerts")->{content});
	$pending = grep { $_->{labels}{alertname} eq 'CheckoutLocksOverdue' && $_->{state} eq 'pending' } @{ $alerts->{data}{alerts} };
	last if $pending;
	usleep(100_000);
}
ok($pending, 'CheckoutLocksOverdue is pending for the overdue lock (it fires after 5 minutes)');

$prometheus->signal('TERM');
$exporter->signal('TERM');
$prometheus->finish;
$exporter->finish;
$node->stop;
done_testing();
