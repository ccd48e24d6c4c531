# Structured events as the server log really has them, and NOTIFY sent by the
# background worker:
#  - every `[checkout] <event> {json}` line is one line of valid JSON naming
#    lock_id and cart_id; all event kinds and rollback steps occur (including
#    "started" and "extended", whose expires_at the pg_regress tests mask);
#  - with log_destination = both, each lock's lines are exactly its rows in
#    checkout.events, in order;
#  - a rolled-back transaction leaves neither a line nor a row nor a NOTIFY;
#  - the sweeper's expiry is logged by the sweeper and its void_required and
#    expired NOTIFYs reach a listening session, from the sweeper's PID;
#    void_required names its compensation row by id (payloads carry
#    identifiers only, see 080_notify_and_forged_logs.pl);
#  - the started event names the session by a fingerprint, never its id.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(usleep);
use Digest::SHA qw(sha256_hex);
use CheckoutTest::Node;

my $node = CheckoutTest::Node->start_new('events',
	settings => { 'checkout.log_events' => 'all', 'checkout.log_destination' => 'both', 'checkout.notify_events' => 'all' },
	stock    => [ [ 'T-A', 100, 1000 ], [ 'T-B', 100, 250 ], [ 'T-C', 1, 10 ] ]);
$node->wait_for_sweeper;

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN checkout_events');

sub sql { return $node->query_value($_[0]); }
sub pay { return qq{'{"reference":"$_[0]","amount":$_[1]}'}; }
my $two = q{'[{"line_id":"1","sku":"T-A","quantity":2,"unit_price":1000},{"line_id":"2","sku":"T-B","quantity":1,"unit_price":251}]'};
my $one = q{'[{"line_id":"1","sku":"T-A","quantity":1,"unit_price":1000}]'};

# completed, with a drift warning and an extension
my $ok = sql("SELECT lock_id FROM checkout_start('t-ok', 's', $two)");
sql("SELECT checkout_extend($ok, 's', interval '1 minute')");
sql("SELECT checkout_advance($ok, 's', until => 'price_lock')");
sql("SELECT checkout_advance($ok, 's', " . pay('auth-ok', 2250) . ")");
is(sql("SELECT state FROM checkout_advance($ok, 's', " . pay('cap-ok', 2250) . ", until => 'stock_commit')"),
	'completed', 't-ok completed');
# failed on stock
is(sql(q{SELECT error_code FROM checkout_advance((checkout_start('t-short', 's',
	'[{"line_id":"1","sku":"T-C","quantity":5,"unit_price":10}]')).lock_id, 's', until => 'price_lock')}),
	'KC011', 't-short failed on stock');
# a refused capture: order cancelled, authorisation voided, stock released
my $cap = sql("SELECT lock_id FROM checkout_advance((checkout_start('t-capture', 's', $one)).lock_id, 's', "
	  . pay('auth-c', 1000) . ", until => 'order_creation')");
is(sql("SELECT error_code FROM checkout_advance($cap, 's', " . pay('cap-c', 1) . ")"), 'KC013', 't-capture refused');
# captured, then cancelled: refund
my $ref = sql("SELECT lock_id FROM checkout_advance((checkout_start('t-refund', 's', $one)).lock_id, 's', "
	  . pay('auth-r', 1000) . ", until => 'order_creation')");
sql("SELECT checkout_advance($ref, 's', " . pay('cap-r', 1000) . ", until => 'payment_capture')");
is(sql("SELECT state FROM checkout_cancel($ref, 's')"), 'cancelled', 't-refund cancelled');
# rolled back: no line, no row, no NOTIFY
sql("BEGIN; SELECT checkout_cancel((checkout_start('t-rolled-back', 's', $one)).lock_id, 's'); ROLLBACK;");
# authorised and abandoned: the sweeper expires it
my $exp = sql("SELECT lock_id FROM checkout_advance((checkout_start('t-expire', 's', $one, interval '1 second')).lock_id, 's', "
	  . pay('auth-e', 1000) . ", until => 'payment_authorization')");
$node->wait_for_state($exp, 'expired', 180) or die 'the sweeper did not expire the lock';
my $sweeper = $node->sweeper_pid;

# NOTIFYs: poll the listener until the sweeper's two have arrived
my %notified;
my $got = '';
for my $try (1 .. 100)
{
	$got .= $listener->query('SELECT 1') . "\n";
	last if $got =~ /"event":"expired","lock_id":$exp[,}]/;
	usleep(100_000);
}
my @notes;
while ($got =~ /Asynchronous notification "checkout_events" with payload "(.*)" received from server process with PID (\d+)\./g)
{
	push @notes, { payload => decode_json($1), pid => $2 };
}
my @from_sweeper = grep { $_->{payload}{lock_id} == $exp } @notes;
is_deeply([ map { $_->{payload}{event} } @from_sweeper ], [ 'void_required', 'expired' ],
	'the expiry NOTIFYs void_required, then expired');
is_deeply([ map { $_->{pid} } @from_sweeper ], [ $sweeper, $sweeper ], '... sent by the sweeper');
my $comp = $from_sweeper[0]{payload}{compensation_id} // 0;
is(sql("SELECT reference FROM checkout.compensations WHERE compensation_id = $comp AND lock_id = $exp AND kind = 'void_required' AND resolved_at IS NULL"),
	'auth-e', '... void_required names the compensation row with the authorisation to void');
ok(!exists $from_sweeper[0]{payload}{reference} && !exists $from_sweeper[0]{payload}{amount},
	'... and carries no payment reference or amount');
is_deeply([ sort map { $_->{payload}{event} } grep { $_->{payload}{lock_id} != $exp } @notes ],
	[ 'completed', 'failed', 'failed', 'refund_required', 'refund_required', 'void_required' ],
	'the other NOTIFYs: completed, two failures, the refused capture and the cancelled capture refunded, the void');
my %committed = map { $_ => 1 } split /\n/, sql('SELECT lock_id FROM checkout.locks');
ok(!grep({ !$committed{ $_->{payload}{lock_id} } } @notes), 'a rolled-back transaction notifies nothing');
$listener->quit;

# the server log
my @lines;
my %line_pid;
for my $l (split /\n/, slurp_file($node->logfile))
{
	next unless $l =~ /\[(\d+)\] (?:\S+ )?LOG:  \[checkout\] ([a-z ]+?) (\{.*)$/;
	my ($pid, $event, $json) = ($1, $2, $3);
	my $detail = eval { decode_json($json) };
	ok(0, "log line is valid JSON: $l") unless $detail;
	push @lines, { event => $event, detail => $detail, pid => $pid } if $detail;
}
ok(@lines > 40, scalar(@lines) . ' [checkout] lines, each valid JSON on one line');
ok(!grep({ !defined $_->{detail}{lock_id} || !defined $_->{detail}{cart_id} } @lines), 'every line names lock_id and cart_id');
my %events = map { $_->{event} => 1 } @lines;
my @all_events = ('started', 'extended', 'phase completed', 'stock reserved', 'price drift', 'price locked',
	'stock committed', 'completed', 'failed', 'payment refused', 'rollback started', 'rollback step completed',
	'stock released', 'cancelled', 'expired');
is_deeply([ sort keys %events ], [ sort @all_events ], 'every kind of event was logged');
is_deeply([ sort keys %{ { map { $_->{detail}{step} => 1 } grep { $_->{event} eq 'rollback step completed' } @lines } } ],
	[ 'order_cancelled', 'refund_capture', 'release_reservations', 'void_authorization' ], 'every rollback step was logged');
my ($started) = grep { $_->{event} eq 'started' && $_->{detail}{lock_id} == $ok } @lines;
is($started->{detail}{session}, substr(sha256_hex('s'), 0, 16), 'started names the session by its fingerprint');
ok(!grep({ exists $_->{detail}{session_id} } @lines), 'no line carries the session id itself');
is(sql("SELECT '$started->{detail}{expires_at}'::timestamptz < expires_at FROM checkout.locks WHERE lock_id = $ok"), 't',
	'started carries the first deadline, which extended moved');
my ($drift) = grep { $_->{event} eq 'price drift' } @lines;
is_deeply([ @{ $drift->{detail} }{qw(sku cart_price current_price)} ], [ 'T-B', 251, 250 ], 'price drift names sku and prices');
my ($completed) = grep { $_->{event} eq 'completed' } @lines;
is($completed->{detail}{order_ref}, "CO-$ok", 'completed names the order');
ok($completed->{detail}{duration_seconds} >= 0, 'completed has a duration');
ok(!grep({ $_->{detail}{cart_id} eq 't-rolled-back' } @lines), 'a rolled-back transaction logs nothing');
my @expiry = grep { $_->{detail}{lock_id} == $exp && $_->{event} ne 'started' && $_->{event} !~ /^(phase completed|stock reserved|price locked)$/ } @lines;
is_deeply([ map { $_->{event} } @expiry ],
	[ 'rollback started', 'rollback step completed', 'rollback step completed', 'stock released', 'expired' ],
	'the sweep logs the rollback and the expiry');
is_deeply([ map { $_->{pid} } @expiry ], [ ($sweeper) x 5 ], '... from the sweeper');

# log_destination = both: per lock, the log lines are the table's rows, in order
my %rows;
for my $r (split /\n/, sql("SELECT lock_id, event, detail::text FROM checkout.events ORDER BY event_id"))
{
	my ($lock, $event, $detail) = split /\|/, $r, 3;
	push @{ $rows{$lock} }, [ $event, decode_json($detail) ];
}
my %logged;
push @{ $logged{ $_->{detail}{lock_id} } }, [ $_->{event}, $_->{detail} ] for @lines;
is_deeply(\%logged, \%rows, 'each lock\'s log lines are its checkout.events rows, in the same order');
is(sql("SELECT count(*) FROM checkout.events WHERE cart_id = 't-rolled-back'"), '0', 'no row for the rolled-back lock');

$node->stop;
done_testing();
