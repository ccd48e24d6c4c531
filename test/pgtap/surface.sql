-- The public surface the README documents, exactly: every function with its
-- signature and result, the types, the tables and views, the roles and
-- PUBLIC's lack of access, every setting with its default and context, and
-- every SQLSTATE, raised for real (business failures as the error_code of
-- the lock they fail).  Something added to the surface without the README
-- (a function, a setting) fails here too.
--
-- Settings a later version adds are checked once the installed library has
-- that version; checkout.database only exists when the library is preloaded
-- (make test preloads it).
\ir ../fixtures/checkout_test.sql
BEGIN;
SELECT plan(74);

CREATE TEMP TABLE documented_settings (name text, default_value text, context text, since text, needs_preload bool);
INSERT INTO documented_settings VALUES
  ('checkout.ttl',                   '15min',      'user',       '0.1.0', false),
  ('checkout.max_ttl',               '1h',         'superuser',  '0.1.0', false),
  ('checkout.cleanup_interval',      '5min',       'sighup',     '0.1.0', false),
  ('checkout.event_retention',       '7d',         'sighup',     '0.1.0', false),
  ('checkout.price_drift_tolerance', '1',          'superuser',  '0.1.0', false),
  ('checkout.prevent_concurrent',    'on',         'superuser',  '0.1.0', false),
  ('checkout.cart_protection',       'on',         'superuser',  '0.1.0', false),
  ('checkout.logging',               'on',         'superuser',  '0.1.0', false),
  ('checkout.log_events',            'lifecycle,failures,rollbacks,price_drift', 'superuser', '0.1.0', false),
  ('checkout.log_destination',       'server_log', 'superuser',  '0.1.0', false),
  ('checkout.payment_gateway',       'stripe',     'superuser',  '0.1.0', false),
  ('checkout.notify_channel',        'checkout_events', 'superuser', '0.1.0', false),
  ('checkout.database',              'postgres',   'postmaster', '0.1.0', true),
  ('checkout.max_lines',             '1000',       'superuser',  '0.2.0', false),
  ('checkout.notify_events',         'void_required,refund_required,expired', 'superuser', '0.2.0', false),
  ('checkout.direct_access',         'on',         'superuser',  '0.3.0', false),
  ('checkout.rebalance_interval',    '1s',         'sighup',     '0.3.0', false);
-- the settings this server should define
CREATE TEMP VIEW expected_settings AS
SELECT d.* FROM documented_settings d
WHERE string_to_array(d.since, '.')::int[] <= (SELECT string_to_array(default_version, '.')::int[]
                                               FROM pg_available_extensions WHERE name = 'checkout')
  AND (NOT d.needs_preload
       OR 'checkout' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')));

-- functions: exactly the documented ones, each with its arguments and result
SELECT set_eq(
  $$SELECT p.oid::regprocedure::text FROM pg_proc p
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'checkout'$$,
  ARRAY['checkout_start(text,text,jsonb,interval,text)', 'checkout_advance(bigint,text,jsonb,checkout.phase)',
        'checkout_status(bigint,text)', 'checkout_extend(bigint,text,interval)', 'checkout_cancel(bigint,text)',
        'checkout_fail(bigint,text,text)', 'checkout_cleanup_expired(integer)', 'checkout_release(bigint,text)',
        'checkout_monitor(integer)', 'checkout_verify()', 'checkout.protect_cart()', 'checkout.table_access()',
        'checkout_stripe(text,integer)', 'checkout_rebalance(text)', 'checkout.inventory_restock()'],
  'the extension has exactly the documented functions');
SELECT is(pg_get_function_arguments(to_regprocedure(f)) || ' -> ' || pg_get_function_result(to_regprocedure(f)), sig,
          f || ': ' || sig)
FROM (VALUES
  ('checkout_start(text,text,jsonb,interval,text)',
   'cart_id text, session_id text, lines jsonb, ttl interval DEFAULT NULL::interval, idempotency_key text DEFAULT NULL::text -> checkout.status'),
  ('checkout_advance(bigint,text,jsonb,checkout.phase)',
   'lock_id bigint, session_id text, payload jsonb DEFAULT ''{}''::jsonb, until checkout.phase DEFAULT NULL::checkout.phase -> checkout.status'),
  ('checkout_status(bigint,text)', 'lock_id bigint, session_id text -> checkout.status'),
  ('checkout_extend(bigint,text,interval)', 'lock_id bigint, session_id text, by interval -> checkout.status'),
  ('checkout_cancel(bigint,text)', 'lock_id bigint, session_id text -> checkout.status'),
  ('checkout_fail(bigint,text,text)', 'lock_id bigint, session_id text, reason text -> checkout.status'),
  ('checkout_cleanup_expired(integer)', 'batch integer DEFAULT 1000 -> integer'),
  ('checkout_release(bigint,text)', 'lock_id bigint, reason text -> checkout.status'),
  ('checkout_monitor(integer)',
   'hours integer DEFAULT 24 -> TABLE(started bigint, completed bigint, failed bigint, expired bigint, cancelled bigint, '
   'active bigint, success_rate numeric, failures_by_phase jsonb, failures_by_code jsonb, duration_p50 interval, '
   'duration_p95 interval, duration_max interval, price_drift_warnings bigint, active_locks bigint, overdue_locks bigint, '
   'oldest_active_age interval, units_reserved bigint)'),
  ('checkout_verify()', ' -> TABLE(invariant text, subject text, detail text)'),
  ('checkout.protect_cart()', ' -> trigger'),
  ('checkout.table_access()', ' -> TABLE(table_name text, direct boolean, reason text)'),
  ('checkout_stripe(text,integer)', 'sku text, stripes integer -> integer'),
  ('checkout_rebalance(text)', 'sku text DEFAULT NULL::text -> integer'),
  ('checkout.inventory_restock()', ' -> trigger')
) t(f, sig);
SELECT is((SELECT count(*)::int FROM pg_proc p
           JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
           JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'checkout'
           WHERE NOT (p.prosecdef AND (p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp']
                                       OR (p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'c')
                                           AND p.prorettype <> 'trigger'::regtype)))), 0,
          'every function is SECURITY DEFINER, its search_path pinned by a SET clause (SQL, plpgsql, the trigger) or in C (test/pgtap/hostile_search_path.sql)');

-- types
SELECT has_schema('checkout');
SELECT enum_has_labels('checkout', 'lock_state', ARRAY['active', 'completed', 'failed', 'expired', 'cancelled']);
SELECT enum_has_labels('checkout', 'phase', ARRAY['cart_validation', 'inventory_reservation', 'price_lock',
  'payment_authorization', 'order_creation', 'payment_capture', 'stock_commit']);
SELECT is((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
           FROM pg_attribute WHERE attrelid = 'checkout.status'::regclass AND attnum > 0 AND NOT attisdropped),
  'lock_id bigint, cart_id text, state checkout.lock_state, phase checkout.phase, expires_at timestamp with time zone, '
  'total bigint, order_ref text, failed_phase checkout.phase, error_code text, error_message text, '
  'created boolean, phases_run checkout.phase[], ended boolean',
  'checkout.status: its fields and types, in order');

-- tables and views
SELECT tables_are('checkout', ARRAY['inventory', 'locks', 'lock_lines', 'reservations', 'price_snapshots', 'orders',
                                    'compensations', 'events', 'payment_metadata', 'inventory_stripes']);
SELECT views_are('checkout', ARRAY['active_locks', 'stuck_reservations', 'stats', 'stock']);
SELECT columns_are('checkout', 'inventory', ARRAY['sku', 'on_hand', 'reserved', 'unit_price']);
SELECT col_is_pk('checkout', 'inventory', 'sku', 'inventory is keyed by sku');
SELECT has_column('checkout', 'compensations', c, 'checkout.compensations has ' || c)
FROM unnest(ARRAY['lock_id', 'kind', 'reference', 'amount', 'resolved_at']) c;

-- roles, and nothing for PUBLIC
SELECT has_role('checkout_app');
SELECT has_role('checkout_admin');
SELECT is_member_of('checkout_app', 'checkout_admin');
SELECT is((SELECT count(*)::int FROM pg_roles WHERE rolname IN ('checkout_app', 'checkout_admin') AND rolcanlogin), 0,
          'neither role can log in');
SELECT ok(NOT has_schema_privilege('public', 'checkout', 'USAGE'), 'PUBLIC has no USAGE on schema checkout');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
           WHERE c.relnamespace = 'checkout'::regnamespace
             AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege('public', c.oid, 'USAGE, SELECT, UPDATE')
                      WHEN c.relkind IN ('r', 'p', 'v') THEN
                        has_table_privilege('public', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                      ELSE false END),
          NULL, 'PUBLIC has no privilege on any table, view or sequence of schema checkout');
SELECT is((SELECT array_agg(p.oid::regprocedure::text) FROM pg_proc p
           JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
           JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'checkout'
           WHERE has_function_privilege('public', p.oid, 'EXECUTE')),
          NULL, 'PUBLIC may execute none of the functions');

-- settings: exactly the documented ones, each with its default and context
SELECT set_eq($$SELECT name FROM pg_settings WHERE name LIKE 'checkout.%'$$,
              $$SELECT name FROM expected_settings$$, 'the checkout settings are exactly the documented ones');
SELECT is(CASE WHEN s.unit IS NULL THEN s.boot_val
               WHEN (s.boot_val || s.unit)::interval = d.default_value::interval THEN d.default_value
               ELSE s.boot_val || s.unit END || ', ' || s.context,
          d.default_value || ', ' || d.context,
          d.name || ': default ' || d.default_value || ', context ' || d.context)
FROM expected_settings d LEFT JOIN pg_settings s USING (name)
ORDER BY d.name;
SELECT skip('checkout.max_lines arrives with 0.2.0', 1)
WHERE NOT EXISTS (SELECT 1 FROM expected_settings WHERE name = 'checkout.max_lines');
SELECT skip('checkout.database is defined when the library is preloaded', 1)
WHERE NOT EXISTS (SELECT 1 FROM expected_settings WHERE name = 'checkout.database');

-- raised SQLSTATEs; none of the failing calls writes anything
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('SF-A', 10, 100), ('SF-ONE', 1, 100);
CREATE TEMP TABLE surface_lock AS
  SELECT lock_id FROM checkout_start('sf-cart', 'sf', '[{"line_id":"1","sku":"SF-A","quantity":1,"unit_price":100}]');
CREATE TEMP TABLE locks_before AS SELECT count(*) AS n FROM checkout.locks;
SELECT throws_ok($$SELECT checkout_start('sf-cart', 'intruder', '[{"line_id":"1","sku":"SF-A","quantity":1,"unit_price":100}]')$$,
                 'KC001', NULL, 'KC001: another session holds the cart');
SELECT throws_ok(format('SELECT checkout_status(%s, %L)', (SELECT lock_id FROM surface_lock), 'intruder'),
                 'KC002', NULL, 'KC002: another session''s lock');
SELECT throws_ok($$SELECT checkout_status(-1, 'sf')$$, 'KC002', NULL, 'KC002: no such lock');
SELECT is((SELECT phase::text FROM checkout_advance((SELECT lock_id FROM surface_lock), 'sf', until => 'price_lock')),
          'price_lock', 'a lock at price_lock');
SELECT throws_ok(format('SELECT checkout_advance(%s, %L)', (SELECT lock_id FROM surface_lock), 'sf'),
                 'KC020', NULL, 'KC020: a payment phase without payload');
SELECT throws_ok(format('SELECT checkout_advance(%s, %L, %L)', (SELECT lock_id FROM surface_lock), 'sf', '{"reference":"r"}'),
                 'KC020', NULL, 'KC020: a malformed payload');
SELECT throws_ok($$SELECT checkout_start('sf-x', 'sf', '[]')$$, '22023', NULL, '22023: bad lines');
SELECT throws_ok($$SELECT checkout_start('sf-x', 'sf', '[{"line_id":"1","sku":"SF-A","quantity":2,"unit_price":9223372036854775807}]')$$,
                 '22003', NULL, '22003: a cart total beyond bigint');
CREATE TEMP TABLE surface_cart_lines (cart_id text);
CREATE TRIGGER surface_protect BEFORE INSERT ON surface_cart_lines
  FOR EACH ROW EXECUTE FUNCTION checkout.protect_cart('cart_id');
SELECT throws_ok($$INSERT INTO surface_cart_lines VALUES ('sf-cart')$$, 'KC030', NULL, 'KC030: the cart is locked');
SELECT is((SELECT count(*) FROM checkout.locks), (SELECT n FROM locks_before), '... and none of them wrote a lock');
SELECT is((SELECT state::text FROM checkout_cancel((SELECT lock_id FROM surface_lock), 'sf')), 'cancelled', 'the lock is cancelled');
SELECT throws_ok(format('SELECT checkout_advance(%s, %L)', (SELECT lock_id FROM surface_lock), 'sf'),
                 'KC004', NULL, 'KC004: the lock is no longer active');
CALL checkout_test.create_roles('surface');
SET LOCAL ROLE surface_nobody;
SELECT throws_ok($$SELECT checkout_status(1, 'sf')$$, '42501', NULL, '42501: a role without checkout_app');
RESET ROLE;

-- business failures: returned in error_code, not raised
-- the code a new lock of one line fails with, run up to the authorisation
CREATE FUNCTION pg_temp.failure(cart text, sku text, quantity int, unit_price int, payment jsonb DEFAULT '{}')
RETURNS text LANGUAGE sql AS $$
  SELECT error_code FROM checkout_advance(
    (checkout_start(cart, 'sf', jsonb_build_array(jsonb_build_object('line_id', '1', 'sku', sku, 'quantity', quantity,
                                                                      'unit_price', unit_price)))).lock_id,
    'sf', payment, until => 'payment_authorization')
$$;
SELECT is(pg_temp.failure('sf-unknown', 'SF-NONE', 1, 1), 'KC010', 'KC010: an unknown sku');
SELECT is(pg_temp.failure('sf-short', 'SF-ONE', 2, 100), 'KC011', 'KC011: not enough stock');
SELECT is(pg_temp.failure('sf-drift', 'SF-A', 1, 50), 'KC012', 'KC012: the price drifted');
SELECT is(pg_temp.failure('sf-mismatch', 'SF-A', 1, 100, '{"reference":"a","amount":99}'),
          'KC013', 'KC013: an authorisation of the wrong amount');
SELECT is((SELECT error_code FROM checkout_fail((checkout_start('sf-fail', 'sf', '[{"line_id":"1","sku":"SF-A","quantity":1,"unit_price":100}]')).lock_id,
                                                'sf', 'declined')),
          'KC014', 'KC014: the application reported a failure');
CREATE TEMP TABLE overdue AS
  SELECT lock_id FROM checkout_start('sf-late', 'sf', '[{"line_id":"1","sku":"SF-A","quantity":1,"unit_price":100}]');
UPDATE checkout.locks SET created_at = now() - interval '20 minutes', expires_at = now() - interval '5 minutes'
WHERE lock_id = (SELECT lock_id FROM overdue);
SELECT is((SELECT error_code FROM checkout_advance((SELECT lock_id FROM overdue), 'sf')), 'KC015', 'KC015: the lock expired');

SELECT * FROM finish();
ROLLBACK;
