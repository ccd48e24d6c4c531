-- Monitoring and admin objects: their shape, and that only checkout_admin may
-- use them (PUBLIC and checkout_app get nothing).  Functions are SECURITY
-- DEFINER with a pinned search_path; views and functions belong to the
-- extension.
\ir ../fixtures/checkout_test.sql
BEGIN;
SELECT plan(47);

CALL checkout_test.create_roles('tap_mon');
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('TAPMON-1', 10, 100);

-- shape
SELECT has_function('checkout_monitor', ARRAY['integer']);
SELECT has_function('checkout_verify', ARRAY[]::text[]);
SELECT is((SELECT pg_get_function_result('checkout_monitor(integer)'::regprocedure)),
  'TABLE(started bigint, completed bigint, failed bigint, expired bigint, cancelled bigint, active bigint, '
  'success_rate numeric, failures_by_phase jsonb, failures_by_code jsonb, duration_p50 interval, '
  'duration_p95 interval, duration_max interval, price_drift_warnings bigint, active_locks bigint, '
  'overdue_locks bigint, oldest_active_age interval, units_reserved bigint)',
  'checkout_monitor returns one row of named figures');
SELECT is((SELECT pg_get_function_arguments('checkout_monitor(integer)'::regprocedure)),
  'hours integer DEFAULT 24', 'checkout_monitor(hours) defaults to 24 hours');
SELECT is((SELECT pg_get_function_result('checkout_verify()'::regprocedure)),
  'TABLE(invariant text, subject text, detail text)', 'checkout_verify returns (invariant, subject, detail)');
SELECT has_view('checkout', 'active_locks', 'view checkout.active_locks');
SELECT has_view('checkout', 'stuck_reservations', 'view checkout.stuck_reservations');
SELECT has_view('checkout', 'stats', 'view checkout.stats');
SELECT columns_are('checkout', 'active_locks',
  ARRAY['lock_id', 'cart_id', 'session_id', 'phase', 'created_at', 'expires_at', 'age', 'overdue', 'reservations']);
SELECT columns_are('checkout', 'stuck_reservations',
  ARRAY['lock_id', 'cart_id', 'state', 'expires_at', 'sku', 'quantity', 'reserved_at', 'reason', 'stripe']);
SELECT columns_are('checkout', 'stats',
  ARRAY['locks_total', 'locks_active', 'locks_completed', 'locks_failed', 'locks_expired', 'locks_cancelled',
        'skus', 'units_on_hand', 'units_reserved', 'reservations', 'price_drift_warnings', 'compensations_open']);
SELECT is((SELECT count(*)::int FROM information_schema.columns
           WHERE table_schema = 'checkout' AND table_name = 'stats' AND data_type <> 'bigint'), 0,
          'every checkout.stats counter is a bigint');

-- safety of the definitions
SELECT ok((SELECT bool_and(p.prosecdef) FROM pg_proc p
           WHERE p.oid IN ('checkout_monitor(integer)'::regprocedure, 'checkout_verify()'::regprocedure)),
          'monitor and verify are SECURITY DEFINER');
SELECT ok((SELECT bool_and(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp']) FROM pg_proc p
           WHERE p.oid IN ('checkout_monitor(integer)'::regprocedure, 'checkout_verify()'::regprocedure)),
          '... with search_path pinned to pg_catalog, pg_temp');
SELECT is((SELECT count(*)::int FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
           WHERE e.extname = 'checkout' AND d.deptype = 'e' AND d.classid = 'pg_class'::regclass
             AND d.objid IN ('checkout.active_locks'::regclass, 'checkout.stuck_reservations'::regclass,
                             'checkout.stats'::regclass)), 3, 'the views belong to the extension');
SELECT is((SELECT count(*)::int FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
           WHERE e.extname = 'checkout' AND d.deptype = 'e' AND d.classid = 'pg_proc'::regclass
             AND d.objid IN ('checkout_monitor(integer)'::regprocedure, 'checkout_verify()'::regprocedure)), 2,
          'monitor and verify belong to the extension');
SELECT ok(NOT has_function_privilege('public', 'checkout_monitor(integer)', 'EXECUTE'), 'PUBLIC cannot run checkout_monitor');
SELECT ok(NOT has_function_privilege('public', 'checkout_verify()', 'EXECUTE'), 'PUBLIC cannot run checkout_verify');
SELECT ok(NOT has_table_privilege('public', 'checkout.stats', 'SELECT'), 'PUBLIC cannot read checkout.stats');
SELECT ok(NOT has_function_privilege('checkout_app', 'checkout_monitor(integer)', 'EXECUTE'), 'checkout_app cannot run checkout_monitor');
SELECT ok(has_function_privilege('checkout_admin', 'checkout_verify()', 'EXECUTE'), 'checkout_admin can run checkout_verify');
SELECT table_privs_are('checkout', 'active_locks', 'checkout_admin', ARRAY['SELECT'], 'checkout_admin may only read checkout.active_locks');
SELECT table_privs_are('checkout', 'stuck_reservations', 'checkout_admin', ARRAY['SELECT'], '... and checkout.stuck_reservations');
SELECT table_privs_are('checkout', 'stats', 'checkout_app', ARRAY[]::text[], 'checkout_app has no privilege on checkout.stats');

-- a role with neither checkout role
SET ROLE tap_mon_nobody;
SELECT throws_ok($$SELECT * FROM checkout_monitor(24)$$, '42501', NULL, 'a role without checkout roles cannot monitor');
SELECT throws_ok($$SELECT * FROM checkout_verify()$$, '42501', NULL, '... nor verify');
SELECT throws_ok($$SELECT * FROM checkout.stats$$, '42501', NULL, '... nor read checkout.stats');
RESET ROLE;

-- the application role
SET ROLE tap_mon_app;
SELECT is((SELECT state::text FROM checkout_advance((checkout_start('tapmon-cart', 'tapmon', '[{"line_id":"1","sku":"TAPMON-1","quantity":2,"unit_price":100}]')).lock_id,
                                                    'tapmon', until => 'inventory_reservation')),
          'active', 'checkout_app holds a lock');
SELECT throws_ok($$SELECT * FROM checkout_monitor(24)$$, '42501', NULL, 'checkout_app cannot monitor');
SELECT throws_ok($$SELECT * FROM checkout_verify()$$, '42501', NULL, '... nor verify');
SELECT throws_ok($$SELECT * FROM checkout.active_locks$$, '42501', NULL, '... nor list active locks (other sessions'')');
SELECT throws_ok($$SELECT * FROM checkout.stuck_reservations$$, '42501', NULL, '... nor stuck reservations');
SELECT throws_ok($$SELECT * FROM checkout.stats$$, '42501', NULL, '... nor the counters');
SELECT throws_ok($$SELECT * FROM checkout.events$$, '42501', NULL, '... nor the events table');
SELECT throws_ok($$SELECT checkout_release(1, 'x')$$, '42501', NULL, '... nor release a lock');
RESET ROLE;

-- the admin role
SET ROLE tap_mon_admin;
SELECT is((SELECT active_locks >= 1 AND units_reserved >= 2 FROM checkout_monitor(24)), true, 'checkout_admin can monitor');
SELECT is((SELECT count(*)::int FROM checkout_verify() WHERE subject IN ('TAPMON-1')), 0, 'checkout_admin can verify');
SELECT is((SELECT reservations FROM checkout.active_locks WHERE cart_id = 'tapmon-cart'),
          '[{"sku": "TAPMON-1", "quantity": 2}]'::jsonb, 'checkout_admin sees what each active lock holds');
SELECT lives_ok($$SELECT * FROM checkout.stuck_reservations$$, 'checkout_admin can list stuck reservations');
SELECT is((SELECT locks_active >= 1 FROM checkout.stats), true, 'checkout_admin can read the counters');
SELECT lives_ok($$SELECT * FROM checkout.events WHERE lock_id = 1$$, 'checkout_admin can read the events table');
SELECT throws_ok($$SELECT * FROM checkout_monitor(0)$$, '22023', 'hours must be at least 1', 'checkout_monitor(0) is refused');
SELECT throws_ok($$SELECT * FROM checkout_monitor(NULL)$$, '22023', 'hours must be at least 1', '... and so is NULL');
SELECT is((SELECT error_message FROM checkout_release((SELECT lock_id FROM checkout.active_locks WHERE cart_id = 'tapmon-cart'), 'test')),
          'released by tap_mon_admin: test', 'checkout_admin can release a lock, and is named for it');
SELECT is((SELECT reserved FROM checkout.inventory WHERE sku = 'TAPMON-1'), 0::bigint, '... which releases its stock');
SELECT throws_ok($$DELETE FROM checkout.events$$, '42501', NULL, 'checkout_admin cannot delete events (the worker prunes them)');
SELECT throws_ok($$UPDATE checkout.locks SET state = 'cancelled'$$, '42501', NULL, '... nor edit locks behind the API');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
