-- Issue 19: the direct path runs only on a table whose definition is the one
-- the extension made; whatever else a DBA changes, a checkout stores and
-- refuses what the SQL statements would.  Changes not covered by the other
-- files: a foreign key of the DBA's own, an added column with a default (a
-- constant, a sequence), changed defaults, NOT NULL on a column the
-- extension may leave NULL, an inheritance child.  (A rule: ledger_rule; a
-- unique index: dba_unique_index.)
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
SELECT pg_postmaster_start_time() AS server_started \gset
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('TC-A', 20, 100), ('TC-B', 20, 40), ('TC-X', 20, 10);
CREATE SCHEMA tc;

-- 1. a foreign key of the DBA's own, from the lines' sku to a catalog: a
-- cart with a sku the catalog lacks is refused at start (23503), nothing written
CREATE TABLE tc.catalog (sku text PRIMARY KEY);
INSERT INTO tc.catalog VALUES ('TC-A'), ('TC-B');
ALTER TABLE checkout.lock_lines ADD CONSTRAINT tc_line_in_catalog FOREIGN KEY (sku) REFERENCES tc.catalog;
SELECT table_name, direct, reason ~* '(constraint|foreign|tc_line_in_catalog)' AS reason_names_it
FROM checkout_test.table_access() WHERE table_name = 'lock_lines';
SELECT count(*) AS locks_before FROM checkout.locks \gset
SELECT checkout_test.err(format('SELECT checkout_start(%L, %L, %L)', 'tc-0', 'tc', checkout_test.one_line('TC-X', 1, 10)));
SELECT count(*) - :locks_before AS new_locks FROM checkout.locks;
SELECT lock_id AS l0 FROM checkout_start('tc-0', 'tc', checkout_test.one_line('TC-A', 1, 100)) \gset
SELECT state FROM checkout_cancel(:l0, 'tc');

ALTER TABLE checkout.lock_lines DROP CONSTRAINT tc_line_in_catalog;

-- 2. changed defaults of columns the extension leaves to their default:
-- the rows get the new defaults, as from an INSERT statement
ALTER TABLE checkout.reservations ALTER COLUMN reserved_at SET DEFAULT '2001-02-03 04:05:06+00';
ALTER TABLE checkout.price_snapshots ALTER COLUMN taken_at SET DEFAULT '2001-02-03 04:05:06+00';
ALTER TABLE checkout.orders ALTER COLUMN created_at SET DEFAULT '2001-02-03 04:05:06+00';
SELECT lock_id AS l5 FROM checkout_start('tc-5', 'tc', checkout_test.one_line('TC-B', 1, 40)) \gset
SELECT state, phase, order_ref FROM checkout_advance(:l5, 'tc', checkout_test.pay('a5', 40), until => 'order_creation');
SELECT reserved_at AT TIME ZONE 'UTC' AS reserved_at FROM checkout.reservations WHERE lock_id = :l5;
SELECT taken_at AT TIME ZONE 'UTC' AS taken_at FROM checkout.price_snapshots WHERE lock_id = :l5;
SELECT created_at AT TIME ZONE 'UTC' AS created_at FROM checkout.orders WHERE lock_id = :l5;
SELECT state FROM checkout_cancel(:l5, 'tc');
ALTER TABLE checkout.reservations ALTER COLUMN reserved_at SET DEFAULT pg_catalog.now();
ALTER TABLE checkout.price_snapshots ALTER COLUMN taken_at SET DEFAULT pg_catalog.now();
ALTER TABLE checkout.orders ALTER COLUMN created_at SET DEFAULT pg_catalog.now();

-- 3. added columns with defaults: each new row gets them as an INSERT would
-- (the sequence advanced once per row)
CREATE SEQUENCE tc.line_seq;
ALTER TABLE checkout.lock_lines ADD COLUMN channel text NOT NULL DEFAULT 'web';
ALTER TABLE checkout.lock_lines ADD COLUMN serial bigint DEFAULT nextval('tc.line_seq');
ALTER TABLE checkout.reservations ADD COLUMN note text DEFAULT 'held';
SELECT table_name, direct, reason ~* '(column|channel|serial|note|default)' AS reason_names_it
FROM checkout_test.table_access() WHERE table_name IN ('lock_lines', 'reservations');
SELECT lock_id AS l1 FROM checkout_start('tc-1', 'tc',
       checkout_test.lines(checkout_test.line('1', 'TC-A', 1, 100), checkout_test.line('2', 'TC-B', 2, 40))) \gset
SELECT state, phase FROM checkout_advance(:l1, 'tc', until => 'inventory_reservation');
SELECT line_id, channel, serial FROM checkout.lock_lines WHERE lock_id = :l1 ORDER BY line_id;
SELECT sku, quantity, note FROM checkout.reservations WHERE lock_id = :l1 ORDER BY sku;
SELECT state FROM checkout_cancel(:l1, 'tc');

-- 4. NOT NULL on price_snapshots.drift_percent, which the extension leaves
-- NULL when the cart said 0 and the price is positive: refused (23502),
-- nothing written; a cart price above 0 passes
ALTER TABLE checkout.price_snapshots ALTER COLUMN drift_percent SET NOT NULL;
SELECT table_name, direct, reason ~* '(not null|drift_percent|column)' AS reason_names_it
FROM checkout_test.table_access() WHERE table_name = 'price_snapshots';
SELECT lock_id AS l2 FROM checkout_start('tc-2', 'tc', checkout_test.one_line('TC-X', 1, 0)) \gset
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, until => %L)', :l2, 'tc', 'price_lock'));
SELECT phase, (SELECT count(*) FROM checkout.price_snapshots WHERE lock_id = :l2) AS snapshots,
       (SELECT reserved FROM checkout.inventory WHERE sku = 'TC-X') AS reserved
FROM checkout.locks WHERE lock_id = :l2;
SELECT state FROM checkout_cancel(:l2, 'tc');
SELECT lock_id AS l3 FROM checkout_start('tc-3', 'tc', checkout_test.one_line('TC-X', 1, 10)) \gset
SELECT state, phase, total FROM checkout_advance(:l3, 'tc', until => 'price_lock');
SELECT state FROM checkout_cancel(:l3, 'tc');

-- 5. an inheritance child of orders: not direct; the order is made in
-- checkout.orders itself, and read back through it
CREATE TABLE tc.archived_orders () INHERITS (checkout.orders);
SELECT table_name, direct, reason ~* '(inherit|child|archived_orders)' AS reason_names_it
FROM checkout_test.table_access() WHERE table_name = 'orders';
SELECT lock_id AS l4 FROM checkout_start('tc-4', 'tc', checkout_test.one_line('TC-A', 1, 100)) \gset
SELECT state, phase, order_ref FROM checkout_advance(:l4, 'tc', checkout_test.pay('a4', 100), until => 'order_creation');
SELECT tableoid::regclass AS stored_in, order_ref, status FROM checkout.orders WHERE lock_id = :l4;
SELECT state, failed_phase FROM checkout_fail(:l4, 'tc', 'card declined');
SELECT order_ref, status FROM checkout.orders WHERE lock_id = :l4;
DROP TABLE tc.archived_orders;

-- 6. a default that cannot be evaluated (1/0) on a column the lock's insert
-- names (gateway): an INSERT naming it and an UPDATE plan no default for it,
-- so the checkout goes on; on a column the insert leaves out
-- (error_message), the start fails as that INSERT would (22012), nothing
-- written
ALTER TABLE checkout.locks ALTER COLUMN gateway SET DEFAULT (1 / 0)::text;
SELECT lock_id AS l5 FROM checkout_start('tc-5', 'tc', checkout_test.one_line('TC-A', 1, 100)) \gset
SELECT state, phase FROM checkout_advance(:l5, 'tc', until => 'price_lock');
SELECT state FROM checkout_cancel(:l5, 'tc');
ALTER TABLE checkout.locks ALTER COLUMN gateway DROP DEFAULT;
ALTER TABLE checkout.locks ALTER COLUMN error_message SET DEFAULT (1 / 0)::text;
SELECT checkout_test.err(format('SELECT checkout_start(%L, %L, %L)', 'tc-6', 'tc',
       checkout_test.one_line('TC-A', 1, 100)));
SELECT count(*) AS tc6_locks FROM checkout.locks WHERE cart_id = 'tc-6';
ALTER TABLE checkout.locks ALTER COLUMN error_message DROP DEFAULT;

SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
SELECT * FROM checkout_verify();
SELECT pg_postmaster_start_time() = :'server_started' AS server_not_restarted;

-- the tables as the extension made them, for the tests after this one
DROP EXTENSION checkout;
DROP SCHEMA tc CASCADE;
CREATE EXTENSION checkout;
