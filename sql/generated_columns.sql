-- Issue 19, finding 1: a DBA adds a stored generated column to the
-- extension's tables.  A checkout must then store every generated value as
-- an INSERT or UPDATE statement would (computed from the row, recomputed on
-- update), never crash the server (the 0.2.0 direct path evaluated the
-- generation expression as a default, with no row: SIGSEGV), and
-- checkout.table_access() must show those tables off the direct path.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
SELECT pg_postmaster_start_time() AS server_started \gset
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('GC-A', 10, 100), ('GC-B', 5, 40);

-- one generated column on each table a checkout writes: inserted rows
-- (lock_lines, price_snapshots, reservations, orders) and updated ones
-- (inventory, locks, orders when cancelled)
ALTER TABLE checkout.lock_lines ADD COLUMN line_total bigint GENERATED ALWAYS AS (quantity * cart_price) STORED;
ALTER TABLE checkout.price_snapshots ADD COLUMN locked_total bigint GENERATED ALWAYS AS (quantity * locked_price) STORED;
ALTER TABLE checkout.reservations ADD COLUMN held text GENERATED ALWAYS AS (sku || ' x' || quantity::text) STORED;
ALTER TABLE checkout.orders ADD COLUMN label text GENERATED ALWAYS AS (order_ref || '/' || status) STORED;
ALTER TABLE checkout.inventory ADD COLUMN available bigint GENERATED ALWAYS AS (on_hand - reserved) STORED;
ALTER TABLE checkout.locks ADD COLUMN captured boolean GENERATED ALWAYS AS (capture_amount IS NOT NULL) STORED;

-- every table with a generated column is written by statements
SELECT table_name, direct, reason ~* '(generated|line_total|locked_total|held|label|available|captured)' AS reason_names_it
FROM checkout_test.table_access();

-- 1. a whole checkout of two skus
SELECT lock_id AS l1 FROM checkout_start('gc-1', 'gc',
       checkout_test.lines(checkout_test.line('1', 'GC-B', 2, 40), checkout_test.line('2', 'GC-A', 3, 100))) \gset
SELECT line_no, line_id, sku, quantity, cart_price, line_total FROM checkout.lock_lines WHERE lock_id = :l1 ORDER BY line_no;
SELECT state, phase, total FROM checkout_advance(:l1, 'gc', until => 'price_lock');
SELECT sku, quantity, held FROM checkout.reservations WHERE lock_id = :l1 ORDER BY sku;
SELECT sku, on_hand, reserved, available FROM checkout.inventory ORDER BY sku;
SELECT line_id, quantity, locked_price, locked_total FROM checkout.price_snapshots WHERE lock_id = :l1 ORDER BY line_id;
SELECT state, phase FROM checkout_advance(:l1, 'gc', checkout_test.pay('a1', 380));
SELECT state, phase, order_ref FROM checkout_advance(:l1, 'gc', checkout_test.pay('c1', 380), until => 'stock_commit');
SELECT order_ref, total, status, label FROM checkout.orders WHERE lock_id = :l1;
SELECT state, capture_amount, captured FROM checkout.locks WHERE lock_id = :l1;
SELECT sku, on_hand, reserved, available FROM checkout.inventory ORDER BY sku;

-- 2. rolled back after the order was made: the order's status, and so its
-- label, is recomputed on the update that cancels it; the stock is released
SELECT lock_id AS l2 FROM checkout_start('gc-2', 'gc', checkout_test.one_line('GC-A', 4, 100)) \gset
SELECT state, phase FROM checkout_advance(:l2, 'gc', checkout_test.pay('a2', 400), until => 'order_creation');
SELECT sku, on_hand, reserved, available FROM checkout.inventory WHERE sku = 'GC-A';
SELECT state, failed_phase, error_code FROM checkout_fail(:l2, 'gc', 'card declined');
SELECT order_ref, status, label FROM checkout.orders WHERE lock_id = :l2;
SELECT sku, on_hand, reserved, available FROM checkout.inventory WHERE sku = 'GC-A';
SELECT state, captured FROM checkout.locks WHERE lock_id = :l2;

-- 3. an application's own order_ref, and a business failure (shortfall)
SELECT lock_id AS l3 FROM checkout_start('gc-3', 'gc', checkout_test.one_line('GC-B', 1, 40)) \gset
SELECT state, phase, order_ref FROM checkout_advance(:l3, 'gc',
       checkout_test.pay('a3', 40) || '{"order_ref": "APP-3"}', until => 'order_creation');
SELECT order_ref, source, label FROM checkout.orders WHERE lock_id = :l3;
SELECT state FROM checkout_cancel(:l3, 'gc');
SELECT order_ref, status, label FROM checkout.orders WHERE lock_id = :l3;
SELECT lock_id AS l4 FROM checkout_start('gc-4', 'gc', checkout_test.one_line('GC-B', 50, 40)) \gset
SELECT state, failed_phase, error_code FROM checkout_advance(:l4, 'gc', until => 'price_lock');

-- every stored generated value is the one its expression gives
SELECT (SELECT count(*) FROM checkout.lock_lines WHERE line_total IS DISTINCT FROM quantity * cart_price) AS bad_lines,
       (SELECT count(*) FROM checkout.price_snapshots WHERE locked_total IS DISTINCT FROM quantity * locked_price) AS bad_snapshots,
       (SELECT count(*) FROM checkout.orders WHERE label IS DISTINCT FROM order_ref || '/' || status) AS bad_orders,
       (SELECT count(*) FROM checkout.inventory WHERE available IS DISTINCT FROM on_hand - reserved) AS bad_inventory,
       (SELECT count(*) FROM checkout.locks WHERE captured IS DISTINCT FROM (capture_amount IS NOT NULL)) AS bad_locks,
       (SELECT count(*) FROM checkout.reservations WHERE held IS DISTINCT FROM sku || ' x' || quantity::text) AS bad_reservations;
SELECT * FROM checkout_verify();
SELECT pg_postmaster_start_time() = :'server_started' AS server_not_restarted;

-- the tables as the extension made them, for the tests after this one
DROP EXTENSION checkout;
CREATE EXTENSION checkout;
-- and so back on the direct path
SELECT table_name, direct FROM checkout_test.table_access();
