# The monitoring files agree with each other:
#  - monitoring/postgres_exporter/checkout.yaml: every metric named by the
#    exporter's convention (counters end in _total, gauges do not);
#  - every query of the Grafana dashboard and every alert expression names
#    only metrics that file emits (and the extractor that checks this flags
#    a metric it does not emit);
#  - the dashboard has the panels' metrics the issue asks for;
#  - promtool accepts the alert rules and every dashboard query (as a
#    recording rule), and its unit tests of when each alert fires pass.
use strict;
use warnings;
use FindBin;
use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;
use YAML::XS qw(LoadFile DumpFile);

my $monitoring = "$FindBin::Bin/../../monitoring";
my $queries = LoadFile("$monitoring/postgres_exporter/checkout.yaml");
my $dashboard = decode_json(do { local (@ARGV, $/) = "$monitoring/grafana/checkout.json"; <> });
my $alerts = LoadFile("$monitoring/prometheus/alerts.yml");

# metric name => usage, as the exporter makes them: <query name>_<column>
my %emitted;
for my $query (sort keys %$queries)
{
	for my $column (@{ $queries->{$query}{metrics} })
	{
		my ($name, $spec) = %$column;
		next if $spec->{usage} eq 'LABEL' || $spec->{usage} eq 'DISCARD';
		$emitted{"${query}_$name"} = $spec->{usage};
	}
}
cmp_ok(scalar(keys %emitted), '>=', 20, 'the queries file emits the checkout metrics');
is_deeply([ grep { ($emitted{$_} eq 'COUNTER') != /_total$/ } sort keys %emitted ], [],
	'counters, and only counters, end in _total');
is_deeply([ grep { !/^checkout_[a-z0-9_]+$/ } sort keys %emitted ], [], 'every name starts with checkout_');

# The metric names of a PromQL expression: identifiers that are not
# functions, keywords, label names (in {...}, by/without/on/ignoring lists),
# strings, numbers or durations.
sub metric_names
{
	my ($expr) = @_;
	$expr =~ s/"(?:[^"\\]|\\.)*"//g;
	$expr =~ s/\{[^}]*\}//g;
	$expr =~ s/\[[^\]]*\]//g;
	$expr =~ s/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)//g;
	$expr =~ s/\boffset\s+\S+//g;
	$expr =~ s/(?<![\w:])\d+(?:\.\d+)?(?:e[+-]?\d+)?//gi;
	my %names;
	while ($expr =~ /([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)
	{
		my ($id, $call) = ($1, $2);
		next if $call || $id =~ /^(?:and|or|unless|bool|inf|nan)$/i;
		$names{$id} = 1;
	}
	return sort keys %names;
}

is_deeply([ metric_names('sum by (outcome) (rate(checkout_finished_total{outcome="completed",server=~"$server"}[$__rate_interval])) * 60') ],
	['checkout_finished_total'], 'extractor: labels, ranges, functions and numbers are not metrics');
is_deeply([ metric_names('checkout_a > 0.75 * on (server) group_left (x) checkout_b and delta(checkout_c[1h]) > 1e3') ],
	[qw(checkout_a checkout_b checkout_c)], 'extractor: every operand of a binary expression');
ok((grep { !$emitted{$_} } metric_names('rate(checkout_refunds_total[5m])')),
	'extractor: a metric the file does not emit is flagged');

# every expression of the dashboard (panel targets, the template variable) and the alerts
my @expressions;
my @panels = @{ $dashboard->{panels} };
while (my $panel = shift @panels)
{
	push @panels, @{ $panel->{panels} || [] };    # panels inside rows
	push @expressions, [ "panel \"$panel->{title}\"", $_->{expr} ] for @{ $panel->{targets} || [] };
}
my @panel_queries = map { $_->[1] } @expressions;
for my $variable (@{ $dashboard->{templating}{list} })
{
	my ($metric) = ($variable->{definition} // '') =~ /^label_values\((\w+)\s*,/;
	push @expressions, [ "variable \$$variable->{name}", $metric ] if $metric;
}
my $dashboard_count = @expressions;
cmp_ok($dashboard_count, '>=', 15, "the dashboard has $dashboard_count queries");
for my $group (@{ $alerts->{groups} })
{
	push @expressions, [ "alert $_->{alert}", $_->{expr} ] for @{ $group->{rules} };
}
is(scalar(@expressions) - $dashboard_count, 3, 'three alert rules');

my %used;
for (@expressions)
{
	my ($where, $expr) = @$_;
	my @names = metric_names($expr);
	my @unknown = grep { !$emitted{$_} } @names;
	ok(@names && !@unknown, "$where names only emitted metrics (@names)")
	  or diag("not emitted: @unknown\nexpression: $expr");
	$used{$_} = 1 for @names;
}
my @wanted = qw(checkout_started_total checkout_finished_total checkout_last_hour_success_ratio
  checkout_last_hour_duration_p95_seconds checkout_active_locks checkout_overdue_locks checkout_units_reserved
  checkout_open_compensations checkout_last_hour_phase_failures checkout_last_hour_code_failures
  checkout_price_drift_warnings_total);
is_deeply([ grep { !$used{$_} } @wanted ], [], 'outcomes, success rate, p95, locks, units, compensations, failures by phase and code are all shown');

# promtool: the rules, their unit tests, and every dashboard query as a recording rule
my $tmp = tempdir(CLEANUP => 1);
my $out = `promtool check rules $monitoring/prometheus/alerts.yml 2>&1`;
is($?, 0, 'promtool check rules alerts.yml') or diag($out);
$out = `cd $monitoring/prometheus && promtool test rules alerts_test.yml 2>&1`;
is($?, 0, 'promtool test rules alerts_test.yml: each alert fires when it should, and only then') or diag($out);
my $n = 0;
DumpFile("$tmp/dashboard_rules.yml", { groups => [ { name => 'dashboard', rules => [
	map { { record => 'dashboard:query_' . ++$n, expr => dashboard_promql($_) } } @panel_queries ] } ] });
$out = `promtool check rules $tmp/dashboard_rules.yml 2>&1`;
is($?, 0, 'promtool parses every dashboard panel query') or diag($out);

# A panel query as Prometheus sees it once Grafana has put in its variables.
sub dashboard_promql
{
	my ($expr) = @_;
	$expr =~ s/\$__rate_interval/1m/g;
	$expr =~ s/\$server/.+/g;
	return $expr;
}

done_testing();
