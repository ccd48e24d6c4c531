-- Issue 19, finding 5: a CHECK constraint calls a function, and the DBA
-- replaces the function (CREATE OR REPLACE) to lower a limit.  A statement
-- plans the constraint anew and obeys the new body at once; the 0.2.0 direct
-- path kept the constraint compiled (an IMMUTABLE SQL function inlined in
-- it) until the table's next relcache invalidation, which replacing a
-- function does not send.  The very next checkout in the same backend must
-- obey the new body (23514, nothing written), for an IMMUTABLE SQL function,
-- a VOLATILE SQL function and a VOLATILE PL/pgSQL function; and a column
-- default calling a replaced function.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
SELECT pg_postmaster_start_time() AS server_started \gset
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('RF-A', 100, 100), ('RF-B', 100, 40);
CREATE SCHEMA rf;
CREATE FUNCTION rf.line_ok(quantity bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$ SELECT quantity <= 10 $$;
CREATE FUNCTION rf.reservation_ok(quantity bigint) RETURNS boolean
LANGUAGE sql VOLATILE AS $$ SELECT quantity <= 10 $$;
CREATE FUNCTION rf.ledger_ok(reserved bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$ BEGIN RETURN reserved <= 10; END $$;
ALTER TABLE checkout.lock_lines ADD CONSTRAINT rf_line CHECK (rf.line_ok(quantity));
ALTER TABLE checkout.reservations ADD CONSTRAINT rf_reservation CHECK (rf.reservation_ok(quantity));
ALTER TABLE checkout.inventory ADD CONSTRAINT rf_ledger CHECK (rf.ledger_ok(reserved));

-- 1. IMMUTABLE SQL on lock_lines: 8 units pass the limit of 10, then the
-- function lowers it to 5: the next start of 8 units is refused (23514,
-- no lock, no line), one of 5 passes
SELECT lock_id AS l1 FROM checkout_start('rf-1', 'rf', checkout_test.one_line('RF-A', 8, 100)) \gset
SELECT state, phase FROM checkout_advance(:l1, 'rf', until => 'price_lock');
SELECT state FROM checkout_cancel(:l1, 'rf');
CREATE OR REPLACE FUNCTION rf.line_ok(quantity bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$ SELECT quantity <= 5 $$;
SELECT count(*) AS locks_before, (SELECT count(*) FROM checkout.lock_lines) AS lines_before FROM checkout.locks \gset
SELECT checkout_test.err(format('SELECT checkout_start(%L, %L, %L)', 'rf-2', 'rf',
       checkout_test.one_line('RF-A', 8, 100)));
SELECT count(*) - :locks_before AS new_locks, (SELECT count(*) FROM checkout.lock_lines) - :lines_before AS new_lines
FROM checkout.locks;
SELECT lock_id AS l2 FROM checkout_start('rf-2', 'rf', checkout_test.one_line('RF-A', 5, 100)) \gset
SELECT line_id, quantity FROM checkout.lock_lines WHERE lock_id = :l2;
SELECT state FROM checkout_cancel(:l2, 'rf');

-- 2. VOLATILE SQL on reservations: a reservation of 8 passes, then the limit
-- becomes 5: the next reservation of 8 is refused (23514, nothing reserved)
SELECT lock_id AS l3 FROM checkout_start('rf-3', 'rf',
       checkout_test.lines(checkout_test.line('1', 'RF-B', 4, 40), checkout_test.line('2', 'RF-B', 4, 40))) \gset
SELECT state, phase FROM checkout_advance(:l3, 'rf', until => 'inventory_reservation');
SELECT sku, quantity FROM checkout.reservations WHERE lock_id = :l3;
SELECT state FROM checkout_cancel(:l3, 'rf');
CREATE OR REPLACE FUNCTION rf.reservation_ok(quantity bigint) RETURNS boolean
LANGUAGE sql VOLATILE AS $$ SELECT quantity <= 5 $$;
SELECT lock_id AS l4 FROM checkout_start('rf-4', 'rf',
       checkout_test.lines(checkout_test.line('1', 'RF-B', 4, 40), checkout_test.line('2', 'RF-B', 4, 40))) \gset
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, until => %L)', :l4, 'rf', 'inventory_reservation'));
SELECT phase, (SELECT count(*) FROM checkout.reservations WHERE lock_id = :l4) AS held,
       (SELECT reserved FROM checkout.inventory WHERE sku = 'RF-B') AS reserved
FROM checkout.locks WHERE lock_id = :l4;
SELECT state FROM checkout_cancel(:l4, 'rf');

-- 3. VOLATILE PL/pgSQL on inventory: reserved 5 passes, then the limit
-- becomes 3: the next reservation of 4 is refused (23514, nothing reserved)
SELECT lock_id AS l5 FROM checkout_start('rf-5', 'rf', checkout_test.one_line('RF-A', 5, 100)) \gset
SELECT state, phase FROM checkout_advance(:l5, 'rf', until => 'inventory_reservation');
SELECT reserved FROM checkout.inventory WHERE sku = 'RF-A';
SELECT state FROM checkout_cancel(:l5, 'rf');
CREATE OR REPLACE FUNCTION rf.ledger_ok(reserved bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$ BEGIN RETURN reserved <= 3; END $$;
SELECT lock_id AS l6 FROM checkout_start('rf-6', 'rf', checkout_test.one_line('RF-A', 4, 100)) \gset
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, until => %L)', :l6, 'rf', 'inventory_reservation'));
SELECT phase, (SELECT count(*) FROM checkout.reservations WHERE lock_id = :l6) AS held,
       (SELECT reserved FROM checkout.inventory WHERE sku = 'RF-A') AS reserved
FROM checkout.locks WHERE lock_id = :l6;
SELECT state FROM checkout_cancel(:l6, 'rf');

-- 4. raised again, in one transaction with the refused call: the new body
-- counts from the next statement on, as for SQL
BEGIN;
SELECT lock_id AS l7 FROM checkout_start('rf-7', 'rf', checkout_test.one_line('RF-A', 4, 100)) \gset
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, until => %L)', :l7, 'rf', 'inventory_reservation'));
CREATE OR REPLACE FUNCTION rf.ledger_ok(reserved bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$ BEGIN RETURN reserved <= 10; END $$;
SELECT state, phase FROM checkout_advance(:l7, 'rf', until => 'inventory_reservation');
SELECT reserved FROM checkout.inventory WHERE sku = 'RF-A';
SELECT state FROM checkout_cancel(:l7, 'rf');
COMMIT;

-- 5. a column's default calling a function (IMMUTABLE SQL: planned, it is
-- a constant), replaced: the next row takes the new body's value, as an
-- INSERT's would.  On checkout.price_snapshots, which has no constraint of
-- the DBA's and so keeps the direct path: its defaults are planned once, as
-- a prepared INSERT keeps them, and planned again when a function changes.
CREATE FUNCTION rf.stamp() RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT '2001-01-01 00:00:00+00'::timestamptz $$;
ALTER TABLE checkout.price_snapshots ALTER COLUMN taken_at SET DEFAULT rf.stamp();
SELECT lock_id AS l8 FROM checkout_start('rf-8', 'rf', checkout_test.one_line('RF-A', 1, 100)) \gset
SELECT state, phase FROM checkout_advance(:l8, 'rf', until => 'price_lock');
SELECT taken_at = '2001-01-01 00:00:00+00' AS first_body FROM checkout.price_snapshots WHERE lock_id = :l8;
SELECT state FROM checkout_cancel(:l8, 'rf');
CREATE OR REPLACE FUNCTION rf.stamp() RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT '2002-02-02 00:00:00+00'::timestamptz $$;
SELECT lock_id AS l9 FROM checkout_start('rf-9', 'rf', checkout_test.one_line('RF-A', 1, 100)) \gset
SELECT state, phase FROM checkout_advance(:l9, 'rf', until => 'price_lock');
SELECT taken_at = '2002-02-02 00:00:00+00' AS new_body FROM checkout.price_snapshots WHERE lock_id = :l9;
SELECT state FROM checkout_cancel(:l9, 'rf');

SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
SELECT count(*) AS held FROM checkout.reservations;
SELECT * FROM checkout_verify();
SELECT pg_postmaster_start_time() = :'server_started' AS server_not_restarted;

-- the tables as the extension made them, for the tests after this one
DROP EXTENSION checkout;
DROP SCHEMA rf CASCADE;
CREATE EXTENSION checkout;
