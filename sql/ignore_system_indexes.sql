-- Issue 19, finding 8: ignore_system_indexes is a setting any role may pass
-- when it connects.  It is about the system catalogs; a statement on the
-- extension's tables still uses their primary keys.  The 0.2.0 key reads
-- (systable_beginscan) obeyed it: every key read became a scan of the whole
-- table, and rows came in heap order where the code counted on the
-- primary key's order.  In a session connected with
-- options=-cignore_system_indexes=on, checkout_status and a whole checkout
-- must look up checkout.locks by its primary key (no sequential scan of it,
-- counted in pg_stat_xact_user_tables), and a cart of several skus and lines
-- in no particular order must reserve, price and sell each sku's own units.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SELECT pg_postmaster_start_time() AS server_started \gset
-- ledger rows in heap order C, A, B: not the primary key's
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('IS-C', 30, 300), ('IS-A', 10, 100), ('IS-B', 20, 200);
-- 20000 finished locks: a sequential scan of checkout.locks is no longer
-- what a planner would choose for a lookup by lock_id
INSERT INTO checkout.locks (cart_id, session_id, state, created_at, expires_at, finished_at)
SELECT 'is-old-' || g, 'is', 'cancelled', now() - interval '1 day', now() - interval '1 day' + interval '15 minutes',
       now() - interval '1 day' + interval '1 minute'
FROM generate_series(1, 20000) g;
ANALYZE checkout.locks, checkout.inventory;

-- a new session, as a client would connect; the session's own
-- checkout.direct_access (make test runs this file both ways) carried over
SELECT current_setting('checkout.direct_access', true) IS NOT NULL AS has_direct_access,
       current_setting('checkout.direct_access', true) AS direct_access \gset
\c -reuse-previous=on 'options=-cignore_system_indexes=on'
\if :has_direct_access
SET checkout.direct_access = :'direct_access';
\endif
-- (error: reading a view's rule from its toast table, PostgreSQL warns that
-- it uses the toast index despite the setting)
SET client_min_messages = error;
SET checkout.log_events = 'none';
SHOW ignore_system_indexes;

-- 1. a cart of four lines, line_ids in no order, two lines of one sku
SELECT lock_id AS l1 FROM checkout_start('is-1', 'is', checkout_test.lines(
       checkout_test.line('3', 'IS-C', 3, 300), checkout_test.line('1', 'IS-A', 1, 100),
       checkout_test.line('20', 'IS-B', 2, 200), checkout_test.line('10', 'IS-A', 4, 100))) \gset
SELECT line_no, line_id, sku, quantity, cart_price FROM checkout.lock_lines WHERE lock_id = :l1 ORDER BY line_no;

-- 2. checkout_status: checkout.locks read through its primary key (the
-- counters of pg_stat_xact_user_tables may still hold earlier transactions'
-- scans, not yet flushed: the differences within this transaction count)
BEGIN;
SELECT seq_scan AS seq_before, idx_scan AS idx_before
FROM pg_stat_xact_user_tables WHERE relid = 'checkout.locks'::regclass \gset
SELECT state, phase, total FROM checkout_status(:l1, 'is');
SELECT count(*) FROM generate_series(1, 50) g, LATERAL checkout_status(:l1 + 0 * g, 'is') s WHERE s.state = 'active';
SELECT relname, seq_scan - :seq_before AS seq_scans, idx_scan - :idx_before > 0 AS primary_key_used
FROM pg_stat_xact_user_tables WHERE relid = 'checkout.locks'::regclass;
COMMIT;

-- 3. the whole checkout, in one transaction: no sequential scan of
-- checkout.locks either; each sku holds, then sells, its own units
BEGIN;
SELECT seq_scan AS seq_before, idx_scan AS idx_before
FROM pg_stat_xact_user_tables WHERE relid = 'checkout.locks'::regclass \gset
SELECT state, phase, total FROM checkout_advance(:l1, 'is', until => 'price_lock');
SELECT sku, quantity FROM checkout.reservations WHERE lock_id = :l1 ORDER BY sku;
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
SELECT line_id, sku, quantity, cart_price, locked_price FROM checkout.price_snapshots WHERE lock_id = :l1 ORDER BY line_id;
SELECT state, phase FROM checkout_advance(:l1, 'is', checkout_test.pay('a1', 1800), until => 'order_creation');
SELECT state, phase, order_ref FROM checkout_advance(:l1, 'is', checkout_test.pay('c1', 1800), until => 'stock_commit');
SELECT relname, seq_scan - :seq_before AS seq_scans, idx_scan - :idx_before > 0 AS primary_key_used
FROM pg_stat_xact_user_tables WHERE relid = 'checkout.locks'::regclass;
COMMIT;
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
SELECT count(*) AS held FROM checkout.reservations;

-- 4. a shortfall on one sku of three: nothing reserved; then a cancel
-- releases exactly what each sku held
SELECT lock_id AS l2 FROM checkout_start('is-2', 'is', checkout_test.lines(
       checkout_test.line('b', 'IS-B', 1, 200), checkout_test.line('a', 'IS-A', 6, 100),
       checkout_test.line('c', 'IS-C', 2, 300))) \gset
SELECT state, failed_phase, error_code FROM checkout_advance(:l2, 'is', until => 'price_lock');
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
SELECT lock_id AS l3 FROM checkout_start('is-3', 'is', checkout_test.lines(
       checkout_test.line('b', 'IS-B', 1, 200), checkout_test.line('a', 'IS-A', 2, 100),
       checkout_test.line('c', 'IS-C', 5, 300))) \gset
SELECT state, phase FROM checkout_advance(:l3, 'is', until => 'inventory_reservation');
SELECT sku, quantity FROM checkout.reservations WHERE lock_id = :l3 ORDER BY sku;
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
SELECT state FROM checkout_cancel(:l3, 'is');
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;

SELECT * FROM checkout_verify();
SELECT pg_postmaster_start_time() = :'server_started' AS server_not_restarted;
