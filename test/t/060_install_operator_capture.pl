# Install-time operator capture (issue 8).  The owner of a database, without
# superuser, plants in `public` exact-match operators for every cross-type
# comparison an install script could use (enum vs text, numeric vs integer,
# bigint vs integer, ...) and shadows of functions, each raising a WARNING
# that names itself and the role it runs as.  A superuser then runs CREATE
# EXTENSION checkout there.  Asserts:
#  - no object of the extension (its members, and what hangs off its tables:
#    constraints, indexes, column defaults, view rules, triggers) depends on
#    an operator or function outside pg_catalog that is not the extension's
#    own;
#  - a whole checkout through the API (every phase, a failure with rollback, a
#    cancel, a refund, checkout_fail, release, cleanup, the sweeper, the
#    protect_cart trigger, monitoring, verify, the views) never calls a
#    planted function, although the owner also set the database's search_path
#    to put `public` before pg_catalog;
#  - CREATE EXTENSION checkout VERSION '0.1.0' followed by ALTER EXTENSION
#    checkout UPDATE leaves no such dependency either (the update script
#    replaces what 0.1.0 captured).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('capture');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'checkout'
checkout.database = 'd'
checkout.cleanup_interval = '1s'
checkout.log_events = 'all'
checkout.log_destination = 'both'
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE ROLE mallory LOGIN;
	CREATE DATABASE d OWNER mallory;
	CREATE DATABASE d2 OWNER mallory;
});

# What the owner plants.  Every trap returns the right answer (so nothing else
# breaks and the capture stays unnoticed) and is IMMUTABLE (so it can land in
# an index predicate).
my $traps = q{
CREATE FUNCTION public.trap_noted(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE WARNING 'checkout-trap % called as %', what, current_user;
END $$;
DO $plant$
DECLARE
    t record;
    op text;
    n int := 0;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('anyenum', 'text', 'text'), ('text', 'anyenum', 'text'),
        ('anyenum', 'name', 'text'), ('anyenum', 'varchar', 'text'),
        ('numeric', 'integer', 'numeric'), ('integer', 'numeric', 'numeric'),
        ('numeric', 'bigint', 'numeric'), ('bigint', 'numeric', 'numeric'),
        ('numeric', 'smallint', 'numeric'), ('numeric', 'double precision', 'numeric'),
        ('bigint', 'integer', 'bigint'), ('integer', 'bigint', 'bigint'),
        ('bigint', 'smallint', 'bigint'), ('bigint', 'bigint', 'bigint'),
        ('integer', 'integer', 'integer'), ('boolean', 'boolean', 'boolean'),
        ('text', 'text', 'text'), ('text', 'varchar', 'text'), ('text', 'name', 'text'),
        ('timestamptz', 'timestamptz', 'timestamptz'), ('timestamptz', 'timestamp', 'timestamptz'),
        ('timestamp', 'timestamptz', 'timestamptz'), ('timestamptz', 'date', 'timestamptz'),
        ('interval', 'interval', 'interval'), ('jsonb', 'jsonb', 'jsonb'), ('jsonb', 'text', 'text')
    ) v(l, r, common)
    LOOP
        FOREACH op IN ARRAY ARRAY['=', '<>', '<', '>', '<=', '>=']
        LOOP
            n := n + 1;
            EXECUTE format($f$CREATE FUNCTION public.%I(l %s, r %s) RETURNS boolean
                LANGUAGE plpgsql IMMUTABLE AS $b$
                BEGIN
                    PERFORM public.trap_noted(%L);
                    RETURN l::%s OPERATOR(pg_catalog.%s) r::%s;
                END $b$$f$,
                'trap_' || n, t.l, t.r, t.l || ' ' || op || ' ' || t.r, t.common, op, t.common);
            EXECUTE format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.%I)',
                op, t.l, t.r, 'trap_' || n);
        END LOOP;
    END LOOP;
    -- arithmetic and string operators a default, view or function body could use
    FOR t IN SELECT * FROM (VALUES
        ('-', 'timestamptz', 'interval', 'timestamptz', 'l OPERATOR(pg_catalog.-) r'),
        ('+', 'timestamptz', 'interval', 'timestamptz', 'l OPERATOR(pg_catalog.+) r'),
        ('-', 'timestamptz', 'timestamptz', 'interval', 'l OPERATOR(pg_catalog.-) r'),
        ('*', 'bigint', 'integer', 'bigint', 'l OPERATOR(pg_catalog.*) r'),
        ('*', 'numeric', 'integer', 'numeric', 'l OPERATOR(pg_catalog.*) r'),
        ('/', 'numeric', 'bigint', 'numeric', 'l OPERATOR(pg_catalog./) r'),
        ('||', 'text', 'anyenum', 'text', 'l OPERATOR(pg_catalog.||) r::text'),
        ('||', 'text', 'text', 'text', 'l OPERATOR(pg_catalog.||) r'),
        ('~~', 'text', 'text', 'boolean', 'l OPERATOR(pg_catalog.~~) r'),
        ('!~~', 'text', 'text', 'boolean', 'l OPERATOR(pg_catalog.!~~) r')
    ) v(op, l, r, result, body)
    LOOP
        n := n + 1;
        EXECUTE format($f$CREATE FUNCTION public.%I(l %s, r %s) RETURNS %s
            LANGUAGE plpgsql IMMUTABLE AS $b$
            BEGIN
                PERFORM public.trap_noted(%L);
                RETURN %s;
            END $b$$f$,
            'trap_' || n, t.l, t.r, t.result, t.l || ' ' || t.op || ' ' || t.r, t.body);
        EXECUTE format('CREATE OPERATOR public.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = public.%I)',
            t.op, t.l, t.r, 'trap_' || n);
    END LOOP;
END
$plant$;
-- shadows of the functions the script calls (pg_catalog is searched first,
-- but a script that forgot to qualify one must not find these either)
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN PERFORM public.trap_noted('now()'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION public.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM public.trap_noted('clock_timestamp()'); RETURN pg_catalog.clock_timestamp(); END $$;
CREATE FUNCTION public.octet_length(text) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN PERFORM public.trap_noted('octet_length(text)'); RETURN pg_catalog.octet_length($1); END $$;
CREATE FUNCTION public.length(text) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN PERFORM public.trap_noted('length(text)'); RETURN pg_catalog.length($1); END $$;
CREATE FUNCTION public.jsonb_typeof(jsonb) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN PERFORM public.trap_noted('jsonb_typeof(jsonb)'); RETURN pg_catalog.jsonb_typeof($1); END $$;
CREATE FUNCTION public.count(text) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN PERFORM public.trap_noted('count(text)'); RETURN 0; END $$;
};

# Every object of the extension that depends on an operator or function which
# is neither in pg_catalog nor a member of the extension.  The walk starts at
# the extension's members and follows everything that depends on them
# (constraints, indexes, column defaults and triggers of its tables, the
# rewrite rules of its views).  Run with a pinned search_path: the owner
# changed the database's.
my $foreign_dependencies = q{
SET search_path = pg_catalog;
WITH RECURSIVE ext AS (
    SELECT oid FROM pg_extension WHERE extname = 'checkout'
), members AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
    WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), objs(classid, objid) AS (
    SELECT classid, objid FROM members
  UNION
    SELECT d.classid, d.objid FROM pg_depend d JOIN objs o ON d.refclassid = o.classid AND d.refobjid = o.objid
    WHERE d.deptype IN ('n', 'a', 'i')
)
SELECT pg_describe_object(o.classid, o.objid, 0) || ' -> ' || pg_describe_object(d.refclassid, d.refobjid, 0)
FROM objs o
JOIN pg_depend d ON d.classid = o.classid AND d.objid = o.objid
WHERE d.refclassid IN ('pg_operator'::regclass, 'pg_proc'::regclass)
  AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = d.refclassid AND m.objid = d.refobjid)
  AND CASE WHEN d.refclassid = 'pg_operator'::regclass
           THEN (SELECT oprnamespace FROM pg_operator WHERE oid = d.refobjid)
           ELSE (SELECT pronamespace FROM pg_proc WHERE oid = d.refobjid) END <> 'pg_catalog'::regnamespace
ORDER BY 1;
};

# What the walk covers, so that an empty answer above means something.
my $walked = q{
SET search_path = pg_catalog;
WITH RECURSIVE ext AS (
    SELECT oid FROM pg_extension WHERE extname = 'checkout'
), objs(classid, objid) AS (
    SELECT d.classid, d.objid FROM pg_depend d, ext
    WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
  UNION
    SELECT d.classid, d.objid FROM pg_depend d JOIN objs o ON d.refclassid = o.classid AND d.refobjid = o.objid
    WHERE d.deptype IN ('n', 'a', 'i')
)
SELECT string_agg(pg_describe_object(classid, objid, 0), E'\n' ORDER BY 1) FROM objs;
};

sub trap_calls
{
	my ($offset) = @_;
	my @calls = slurp_file($node->logfile, $offset) =~ /WARNING:  (checkout-trap [^\n]*)/g;
	my %n;
	$n{$_}++ for @calls;
	return join("\n", map { "$n{$_} x $_" } sort keys %n);
}

# --- 1. CREATE EXTENSION checkout in a database prepared by its owner --------
$node->safe_psql('d', $traps, extra_params => [ '-U', 'mallory' ]);
$node->safe_psql('d', 'ALTER DATABASE d SET search_path = public, pg_catalog', extra_params => [ '-U', 'mallory' ]);
is($node->safe_psql('d', q{SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 150 FROM pg_catalog.pg_operator WHERE oprnamespace = 'public'::pg_catalog.regnamespace},
		extra_params => [ '-U', 'mallory' ]),
	't', 'the owner (no superuser) planted its operators in public');

my $log_offset = -s $node->logfile;
$node->safe_psql('d', 'CREATE EXTENSION checkout');

my $objects = $node->safe_psql('d', $walked);
like($objects, qr/^constraint locks_finished_when_terminal on table checkout\.locks$/m, 'the walk reaches the tables\' CHECK constraints');
like($objects, qr/^index checkout\.price_snapshots_taken_at$/m, '... their partial indexes');
like($objects, qr/^default value for column created_at of table checkout\.locks$/m, '... their column defaults');
like($objects, qr/^rule _RETURN on view checkout\.active_locks$/m, '... the views\' rules');
like($objects, qr/^function (public\.)?checkout_verify\(\)$/m, '... the functions');

is($node->safe_psql('d', $foreign_dependencies), '',
	'no object of the extension depends on an operator or function outside pg_catalog and the extension');
is(trap_calls($log_offset), '', 'CREATE EXTENSION called no planted function');

# --- 2. the whole API, as the application and the catalog side would --------
$node->safe_psql('d', q{
	CREATE ROLE shop_app LOGIN IN ROLE checkout_app;
	CREATE ROLE shop_admin LOGIN IN ROLE checkout_admin;
	-- the application's cart table, protected while a checkout runs
	CREATE TABLE public.cart_lines (cart_id text NOT NULL, sku text NOT NULL, quantity int NOT NULL);
	GRANT SELECT, INSERT, UPDATE, DELETE ON public.cart_lines TO shop_app;
	CREATE TRIGGER cart_lines_locked BEFORE INSERT OR UPDATE OR DELETE ON public.cart_lines
	    FOR EACH ROW EXECUTE FUNCTION checkout.protect_cart('cart_id');
});
$log_offset = -s $node->logfile;

sub as_app { return $node->safe_psql('d', $_[0], extra_params => [ '-U', 'shop_app' ]); }
sub as_admin { return $node->safe_psql('d', $_[0], extra_params => [ '-U', 'shop_admin' ]); }
my $lines = q{'[{"line_id":"1","sku":"C-1","quantity":2,"unit_price":1000},{"line_id":"2","sku":"C-2","quantity":1,"unit_price":251}]'};
my $one = q{'[{"line_id":"1","sku":"C-1","quantity":1,"unit_price":1000}]'};

as_admin(q{INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('C-1', 100, 1000), ('C-2', 100, 250), ('C-3', 1, 10)});

# completed, with a price drift within tolerance (a nonzero drift_percent row)
my $ok = as_app("SELECT lock_id FROM checkout_start('cap-ok', 's1', $lines, NULL, 'key-1')");
is(as_app("SELECT lock_id FROM checkout_start('cap-ok', 's1', $lines, NULL, 'key-1')"), $ok, 'idempotent start');
as_app("SELECT checkout_extend($ok, 's1', interval '1 minute')");
is(as_app("SELECT phase FROM checkout_advance($ok, 's1', until => 'price_lock')"), 'price_lock', 'advanced to price_lock');
is(as_app(qq{SELECT phase FROM checkout_advance($ok, 's1', '{"reference":"auth-ok","amount":2250}')}),
	'payment_authorization', 'authorised');
is(as_app(qq{SELECT state FROM checkout_advance($ok, 's1', '{"reference":"cap-ok","amount":2250}', until => 'stock_commit')}),
	'completed', 'captured up to stock_commit');
is(as_app("SELECT state FROM checkout_status($ok, 's1')"), 'completed', 'status reads it');

# the cart table: changes refused while locked, allowed otherwise
as_app(q{INSERT INTO public.cart_lines VALUES ('cap-free', 'C-1', 1)});
my $held = as_app("SELECT lock_id FROM checkout_start('cap-held', 's2', $one)");
my ($rc, $out, $err) = $node->psql('d', q{INSERT INTO public.cart_lines VALUES ('cap-held', 'C-1', 1)},
	extra_params => [ '-U', 'shop_app', '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  KC030:/, 'protect_cart refuses a change to a locked cart');

# a business failure (stock) with rollback of the reservations
is(as_app(q{SELECT error_code FROM checkout_advance((checkout_start('cap-short', 's3',
	'[{"line_id":"1","sku":"C-3","quantity":5,"unit_price":10}]')).lock_id, 's3', until => 'price_lock')}),
	'KC011', 'a failing checkout fails on stock');
# a refused payment: void_required
is(as_app(qq{SELECT error_code FROM checkout_advance((checkout_advance((checkout_start('cap-refused', 's4', $one)).lock_id,
	's4', until => 'price_lock')).lock_id, 's4', '{"reference":"auth-bad","amount":1}')}),
	'KC013', 'a refused authorisation fails the checkout');
# authorised, then cancelled: void_required
is(as_app(qq{SELECT state FROM checkout_cancel((checkout_advance((checkout_start('cap-cancel', 's5', $one)).lock_id,
	's5', '{"reference":"auth-c","amount":1000}', until => 'payment_authorization')).lock_id, 's5')}),
	'cancelled', 'an authorised checkout is cancelled with rollback');
# captured, then released by an admin: refund_required, order cancelled
my $refund = as_app(qq{SELECT lock_id FROM checkout_advance((checkout_advance((checkout_start('cap-refund', 's6', $one)).lock_id,
	's6', '{"reference":"auth-r","amount":1000}', until => 'order_creation')).lock_id,
	's6', '{"reference":"cap-r","amount":1000}', until => 'payment_capture')});
is(as_admin("SELECT state FROM checkout_release($refund, 'customer called')"), 'cancelled', 'a captured checkout is released');
# the application reports a failure
is(as_app("SELECT error_code FROM checkout_fail((checkout_start('cap-fail', 's7', $one)).lock_id, 's7', 'fraud check')"),
	'KC014', 'checkout_fail');
# an overdue lock, expired by checkout_cleanup_expired
my $due = as_app("SELECT lock_id FROM checkout_advance((checkout_start('cap-due', 's8', $one)).lock_id, 's8', until => 'inventory_reservation')");
# (one transaction, so that the sweeper cannot expire it first)
my $verified = $node->safe_psql('d', "BEGIN;
	UPDATE checkout.locks SET created_at = pg_catalog.now() OPERATOR(pg_catalog.-) interval '20 minutes',
	    expires_at = pg_catalog.now() OPERATOR(pg_catalog.-) interval '10 minutes' WHERE lock_id OPERATOR(pg_catalog.=) ${due}::bigint;
	SELECT invariant, subject FROM checkout_verify();
	SELECT 'expired: ' || checkout_cleanup_expired();
	COMMIT;");
like($verified, qr/^active_lock_past_deadline\|$due$/m, 'checkout_verify reports the overdue lock');
like($verified, qr/^expired: 1$/m, 'checkout_cleanup_expired expires it');
is(as_app("SELECT state FROM checkout_status($due, 's8')"), 'expired', '... as the application sees');
# an abandoned lock, expired by the sweeper (superuser)
my $swept = as_app(qq{SELECT lock_id FROM checkout_advance((checkout_start('cap-swept', 's9', $one, interval '1 second')).lock_id,
	's9', '{"reference":"auth-s","amount":1000}', until => 'payment_authorization')});
ok($node->poll_query_until('d', "SELECT state::text OPERATOR(pg_catalog.=) 'expired' FROM checkout.locks WHERE lock_id OPERATOR(pg_catalog.=) ${swept}::bigint"),
	'the sweeper expired an abandoned lock');
# the lock holding cap-held is cancelled: the cart may change again
# (no operator in these statements: the owner put public first in this database's search_path)
as_app("SELECT checkout_cancel($held, 's2')");
as_app(q{INSERT INTO public.cart_lines VALUES ('cap-held', 'C-1', 1)});
as_app(q{UPDATE public.cart_lines SET quantity = 2});
is(as_app(q{SELECT string_agg(format('%s:%s', cart_id, quantity), ',' ORDER BY cart_id) FROM public.cart_lines}),
	'cap-free:2,cap-held:2', '... and lets unlocked carts change');

# monitoring, verification and the views
like(as_admin('SELECT started, completed FROM checkout_monitor(24)'), qr/^\d+\|1$/, 'checkout_monitor');
is(as_admin('SELECT count(*) FROM checkout_verify()'), '0', 'checkout_verify finds nothing wrong');
as_admin('SELECT * FROM checkout.active_locks');
as_admin('SELECT * FROM checkout.stuck_reservations');
like(as_admin('SELECT locks_total, locks_completed, price_drift_warnings FROM checkout.stats'), qr/^\d+\|1\|[1-9]\d*$/,
	'checkout.stats counts the completed lock and its price drift');
is(as_app('SELECT string_agg(kind, \',\' ORDER BY compensation_id) FROM checkout.compensations'),
	'void_required,void_required,refund_required,void_required', 'the compensations the rollbacks recorded');

is(trap_calls($log_offset), '', 'the API, the sweeper, the trigger and the views called no planted function');

# --- 3. the update path: 0.1.0 captured, the update must repair it -----------
$node->safe_psql('d2', $traps, extra_params => [ '-U', 'mallory' ]);
$node->safe_psql('d2', q{CREATE EXTENSION checkout VERSION '0.1.0'});
my $captured_by_010 = $node->safe_psql('d2', $foreign_dependencies);
like($captured_by_010, qr/operator/, '0.1.0 installed in a prepared database binds to planted operators (what the update repairs)');
$node->safe_psql('d2', 'ALTER EXTENSION checkout UPDATE');
is($node->safe_psql('d2', q{SELECT e.extversion = a.default_version AND e.extversion <> '0.1.0'
	FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_available_extensions a ON a.name = e.extname WHERE e.extname = 'checkout'}),
	't', 'ALTER EXTENSION checkout UPDATE moved to the default version');
is($node->safe_psql('d2', $foreign_dependencies), '',
	'after the update no object of the extension depends on an operator or function outside pg_catalog and the extension');

$node->stop;
done_testing();
