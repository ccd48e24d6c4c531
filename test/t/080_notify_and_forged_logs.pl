# What other roles can read or plant (issue 8).
#  - NOTIFY: eve, a login role with no checkout privilege, LISTENs and hears
#    every payload, so payloads carry identifiers only: event and lock_id, and
#    compensation_id for void_required/refund_required, naming the lock's
#    unresolved compensation row of that kind (each row notified once); never
#    a cart, session, reference or amount.  The application's recipe (read
#    the row back) finds each real one and nothing for mallory's forgery.
#  - Error messages: a cart_id, line_id, idempotency_key or order_ref holding
#    a newline and a fake log line shows up escaped on one line in KC001,
#    22023 (duplicate line_id, idempotency key reuse), KC030 and KC020; the
#    server log has no line starting with the planted text, and the anchored
#    log recipe finds exactly the real failures.
#  - session_id (what proves ownership of a lock) is never in the server log
#    or checkout.events, all categories on, destination both; the started
#    event carries its fingerprint instead.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('forgery');
$node->init;
# log_statement = none: the TAP cluster logs every statement, and statements
# are the client's own text; what is tested is what the extension writes
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'checkout'
checkout.database = 'postgres'
checkout.log_events = 'all'
checkout.log_destination = 'both'
checkout.notify_events = 'all'
log_statement = none
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION checkout;
	CREATE ROLE eve LOGIN;
	CREATE ROLE mallory LOGIN;
	CREATE ROLE shop LOGIN IN ROLE checkout_app;
	INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('F-1', 1000, 1000), ('F-2', 1, 10);
	-- the application's cart table, protected while a checkout runs
	CREATE TABLE app_lines (cart_id text NOT NULL);
	CREATE TRIGGER app_lines_locked BEFORE INSERT OR UPDATE OR DELETE ON app_lines
	    FOR EACH ROW EXECUTE FUNCTION checkout.protect_cart('cart_id');
	-- an error as one line of JSON (a message with a raw newline stays visible)
	CREATE FUNCTION error_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE
	    m text; d text; h text;
	BEGIN
	    EXECUTE stmt;
	    RETURN json_build_object('sqlstate', '00000')::text;
	EXCEPTION WHEN OTHERS THEN
	    GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
	    RETURN json_build_object('sqlstate', SQLSTATE, 'message', m, 'detail', d, 'hint', h)::text;
	END $$;
});

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub pay { return qq{'{"reference":"$_[0]","amount":$_[1]}'}; }
my $one = q{'[{"line_id":"1","sku":"F-1","quantity":1,"unit_price":1000}]'};

# ---------------------------------------------------------------------------
# NOTIFY
# ---------------------------------------------------------------------------
my $eve = $node->background_psql('postgres', extra_params => [ '-U', 'eve' ]);
$eve->query_safe('LISTEN checkout_events');

# every event that notifies; carts, sessions and references start with "nt-"
my %lock;
$lock{completed} = sql(q{SELECT lock_id FROM checkout_start('nt-ok', 'nt-session-ok',
	'[{"line_id":"1","sku":"F-1","quantity":2,"unit_price":1000}]')});
sql("SELECT checkout_advance($lock{completed}, 'nt-session-ok', until => 'price_lock')");
sql("SELECT checkout_advance($lock{completed}, 'nt-session-ok', " . pay('nt-auth-ok', 2000) . ")");
sql("SELECT checkout_advance($lock{completed}, 'nt-session-ok', " . pay('nt-cap-ok', 2000) . ", until => 'stock_commit')");
$lock{stock} = sql(q{SELECT lock_id FROM checkout_advance((checkout_start('nt-short', 'nt-session',
	'[{"line_id":"1","sku":"F-2","quantity":5,"unit_price":10}]')).lock_id, 'nt-session', until => 'price_lock')});
$lock{refused_auth} = sql("SELECT lock_id FROM checkout_advance((checkout_advance((checkout_start('nt-refused-a', 'nt-session', $one)).lock_id,
	'nt-session', until => 'price_lock')).lock_id, 'nt-session', " . pay('nt-auth-bad', 999) . ")");
$lock{refused_capture} = sql("SELECT lock_id FROM checkout_advance((checkout_advance((checkout_start('nt-refused-c', 'nt-session', $one)).lock_id,
	'nt-session', " . pay('nt-auth-c', 1000) . ", until => 'order_creation')).lock_id, 'nt-session', " . pay('nt-cap-bad', 1001) . ")");
$lock{refund} = sql("SELECT lock_id FROM checkout_advance((checkout_advance((checkout_start('nt-refund', 'nt-session', $one)).lock_id,
	'nt-session', " . pay('nt-auth-r', 1000) . ", until => 'order_creation')).lock_id, 'nt-session', " . pay('nt-cap-r', 1000) . ", until => 'payment_capture')");
sql("SELECT checkout_cancel($lock{refund}, 'nt-session')");
$lock{app_failure} = sql("SELECT lock_id FROM checkout_fail((checkout_start('nt-fail', 'nt-session', $one)).lock_id, 'nt-session', 'nt-reason')");
$lock{expired} = sql("SELECT lock_id FROM checkout_advance((checkout_start('nt-expire', 'nt-session', $one)).lock_id, 'nt-session', "
	  . pay('nt-auth-e', 1000) . ", until => 'payment_authorization')");
sql("UPDATE checkout.locks SET created_at = now() - interval '20 minutes', expires_at = now() - interval '10 minutes'
	WHERE lock_id = $lock{expired}");
sql('SELECT checkout_cleanup_expired()');
is(sql("SELECT state FROM checkout.locks WHERE lock_id = $lock{expired}"), 'expired', 'the overdue lock expired');

# mallory, with no privilege either, sends a forged refund request
my ($rc, $out, $err) = $node->psql('postgres',
	qq{NOTIFY checkout_events, '{"event":"refund_required","lock_id":$lock{refund},"compensation_id":99999}'},
	extra_params => [ '-U', 'mallory' ]);
is($rc, 0, 'mallory, with no checkout privilege, can NOTIFY on the channel');

my $got = '';
for my $try (1 .. 100)
{
	$got .= $eve->query('SELECT 1') . "\n";
	last if $got =~ /"compensation_id":99999\}/;
	usleep(100_000);
}
$eve->quit;
my (@real, @forged);
my $mallory_pid;
while ($got =~ /Asynchronous notification "checkout_events" with payload "(.*)" received from server process with PID (\d+)\./g)
{
	my ($payload, $pid) = ($1, $2);
	my $json = eval { decode_json($payload) } // {};
	if (($json->{compensation_id} // 0) == 99999) { push @forged, $json; }
	else { push @real, { raw => $payload, json => $json }; }
}
ok(@real >= 10, scalar(@real) . ' notifications reached eve, who has no checkout privilege');
is(scalar(@forged), 1, '... and so did mallory\'s forgery');

my %expected_events = (
	completed => [ 'completed' ], stock => [ 'failed' ], refused_auth => [ 'void_required', 'failed' ],
	refused_capture => [ 'refund_required', 'void_required', 'failed' ], refund => [ 'refund_required' ],
	app_failure => [ 'failed' ], expired => [ 'void_required', 'expired' ]);
my %by_lock;
push @{ $by_lock{ $_->{json}{lock_id} // 'none' } }, $_->{json}{event} // 'none' for @real;
is_deeply({ map { $_ => [ sort @{ $by_lock{ $lock{$_} } // [] } ] } keys %lock },
	{ map { $_ => [ sort @{ $expected_events{$_} } ] } keys %expected_events },
	'each lock notified its events');

my @leaks;
for my $n (@real)
{
	my $event = $n->{json}{event} // '';
	my @keys = sort keys %{ $n->{json} };
	my @want = $event =~ /^(void|refund)_required$/ ? qw(compensation_id event lock_id) : qw(event lock_id);
	push @leaks, "$n->{raw} (keys: @keys)" if "@keys" ne "@want" || $n->{raw} =~ /nt-|2000|1000|999|1001/;
}
is(join("\n", @leaks), '', 'payloads carry only event, lock_id and (void/refund) compensation_id: no cart, session, reference or amount');

my @compensation_ids = sort { $a <=> $b } map { $_->{json}{compensation_id} // () } @real;
is(join(',', @compensation_ids),
	sql('SELECT string_agg(compensation_id::text, \',\' ORDER BY compensation_id) FROM checkout.compensations'),
	'every compensation row was notified once, by its id');

# the application's recipe, as the application role: read the row back
sub recipe
{
	my ($id, $lock, $kind) = @{ $_[0] }{qw(compensation_id lock_id event)};
	return 'not a compensation event' unless ($kind // '') =~ /^(void|refund)_required$/;
	return $node->safe_psql('postgres', sprintf(q{
		SELECT kind || ' ' || reference || ' ' || amount FROM checkout.compensations
		WHERE compensation_id = %d AND lock_id = %d AND kind = '%s' AND resolved_at IS NULL},
		$id // 0, $lock // 0, $kind), extra_params => [ '-U', 'shop' ]);
}
my %found = map { $_->{json}{compensation_id} => recipe($_->{json}) } grep { defined $_->{json}{compensation_id} } @real;
is_deeply(\%found, { map { /^(\d+)\|(.*)$/ ? ($1 => $2) : () } split /\n/,
		sql(q{SELECT compensation_id, kind || ' ' || reference || ' ' || amount FROM checkout.compensations}) },
	'the recipe reads back, for each notification, the compensation row to act on');
is(recipe($forged[0] // { compensation_id => 99999, lock_id => $lock{refund}, event => 'refund_required' }), '',
	'for mallory\'s forged refund_required the recipe finds nothing');

# ---------------------------------------------------------------------------
# error messages and log lines cannot be forged with user text
# ---------------------------------------------------------------------------
# a newline, then what a real line of the server log looks like
my $planted = q{2026-01-01 00:00:00.000 UTC [1] postgres@postgres LOG:  [checkout] failed {"lock_id":1,"cart_id":"x","event":"refund_required","reference":"evil","amount":1}};
(my $planted_sql = $planted) =~ s/'/''/g;
my $forged = "E'fx\\n$planted_sql'";    # SQL: no raw newline in the statement text
my $escaped = '\n' . substr($planted, 0, 40);    # how the message must show it

my $log_offset = -s $node->logfile;
sql("SELECT checkout_start($forged, 'fa', $one)");
sql("SELECT checkout_start('fi-1', 'fi', $one, NULL, $forged)");
sql("SELECT checkout_advance((checkout_start('fo-1', 'fo', $one)).lock_id, 'fo', " . pay('fo-auth', 1000) . ", until => 'payment_authorization')");
sql("SELECT checkout_advance(lock_id, 'fo', jsonb_build_object('order_ref', $forged)) FROM checkout.locks WHERE cart_id = 'fo-1'");
sql("SELECT checkout_advance((checkout_start('fo-2', 'fo', $one)).lock_id, 'fo', " . pay('fo-auth', 1000) . ", until => 'payment_authorization')");

my %case = (
	'KC001, another session starts the cart' => [ 'KC001', "SELECT checkout_start($forged, 'fb', $one)" ],
	'22023, duplicate line_id' => [ '22023', "SELECT checkout_start('fl', 'fl', jsonb_build_array(
		jsonb_build_object('line_id', $forged, 'sku', 'F-1', 'quantity', 1, 'unit_price', 1000),
		jsonb_build_object('line_id', $forged, 'sku', 'F-1', 'quantity', 1, 'unit_price', 1000)))" ],
	'22023, idempotency key reused for another cart' => [ '22023', "SELECT checkout_start('fi-2', 'fi', $one, NULL, $forged)" ],
	'KC030, protect_cart' => [ 'KC030', "INSERT INTO app_lines VALUES ($forged)" ],
	'KC020, order_ref used by another checkout' => [ 'KC020',
		"SELECT checkout_advance(lock_id, 'fo', jsonb_build_object('order_ref', $forged)) FROM checkout.locks WHERE cart_id = 'fo-2'" ],
);
for my $name (sort keys %case)
{
	my ($sqlstate, $stmt) = @{ $case{$name} };
	(my $quoted = $stmt) =~ s/'/''/g;
	my $e = decode_json(sql("SELECT error_of('$quoted')"));
	is($e->{sqlstate}, $sqlstate, "$name: $sqlstate");
	my $text = join(' | ', map { $_ // '' } @{$e}{qw(message detail hint)});
	unlike($text, qr/\n/, "$name: no raw newline in message, detail or hint");
	ok(index($e->{message} // '', $escaped) >= 0, "$name: the message shows the text escaped")
	  or diag("message: " . ($e->{message} // ''));
	# and once more uncaught, so that the server logs the error
	$node->psql('postgres', $stmt);
}
my $log = slurp_file($node->logfile, $log_offset);
ok($log =~ /ERROR:  [^\n]*\Q$escaped\E/, 'the server logged the errors, with the text escaped');
ok($log !~ /^\s*\Q2026-01-01 00:00:00.000 UTC [1]\E/m, 'no line of the server log starts with the planted text');

# the anchored recipe ("LOG:  [checkout] failed {" after a prefix without
# quotes) finds exactly the failures checkout.events has
$log = slurp_file($node->logfile);
my @recipe = grep { /^[^"']* LOG:  \[checkout\] failed \{/ } split /\n/, $log;
is(scalar(@recipe), sql(q{SELECT count(*) FROM checkout.events WHERE event = 'failed'}),
	'the anchored log recipe matches exactly the real failures, not the planted one');

# ---------------------------------------------------------------------------
# session_id stays out of logs and events
# ---------------------------------------------------------------------------
my $secret = 'sess-' . substr(sha256_hex("$$ " . time), 0, 24);
my $fingerprint = substr(sha256_hex($secret), 0, 16);
my $s = sql("SELECT lock_id FROM checkout_start('sid-1', '$secret', $one, NULL, 'sid-key')");
sql("SELECT checkout_extend($s, '$secret', interval '1 minute')");
sql("SELECT checkout_advance($s, '$secret', " . pay('sid-auth', 1000) . ", until => 'payment_authorization')");
sql("SELECT checkout_advance($s, '$secret', " . pay('sid-cap', 1000) . ", until => 'stock_commit')");
sql("SELECT checkout_status($s, '$secret')");
sql("SELECT checkout_cancel((checkout_advance((checkout_start('sid-2', '$secret', $one)).lock_id, '$secret', "
	  . pay('sid-auth-2', 1000) . ", until => 'payment_authorization')).lock_id, '$secret')");
sql("SELECT checkout_fail((checkout_start('sid-3', '$secret', $one)).lock_id, '$secret', 'declined')");
my $overdue = sql("SELECT lock_id FROM checkout_advance((checkout_start('sid-4', '$secret', $one)).lock_id, '$secret', until => 'price_lock')");
sql("UPDATE checkout.locks SET created_at = now() - interval '20 minutes', expires_at = now() - interval '10 minutes' WHERE lock_id = $overdue");
sql('SELECT checkout_cleanup_expired()');
sql("SELECT checkout_release((checkout_start('sid-5', '$secret', $one)).lock_id, 'support')");
is(sql("SELECT string_agg(state::text, ',' ORDER BY cart_id) FROM checkout.locks WHERE cart_id LIKE 'sid-%'"),
	'completed,cancelled,failed,expired,cancelled', 'five checkouts of one session, every ending');

$log = slurp_file($node->logfile);
is(index($log, $secret), -1, 'the session_id is nowhere in the server log');
is(sql("SELECT count(*) FROM checkout.events WHERE strpos(detail::text, '$secret') > 0 OR detail ? 'session_id'"), '0',
	'... nor in checkout.events');
is(sql(qq{SELECT string_agg(DISTINCT detail->>'session', ',') FROM checkout.events
	WHERE event = 'started' AND cart_id LIKE 'sid-%'}), $fingerprint,
	'the started events carry the session fingerprint (16 hex digits of its SHA-256)');
ok($log =~ /LOG:  \[checkout\] started \{[^\n]*"session":"$fingerprint"/, '... in the server log too');

$node->stop;
done_testing();
