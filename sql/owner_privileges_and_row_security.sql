-- Issue 19, finding 6: the API functions are SECURITY DEFINER, so their
-- owner's privileges and the row security policies that apply to the owner
-- decide what a call may read and write, as they decide it for the
-- statements the functions stand for.  With a non-superuser owner, a REVOKE
-- of INSERT/UPDATE on inventory and reservations must refuse the reserving
-- call (42501) and change nothing (the 0.2.0 direct path wrote anyway); with
-- row security on locks and a policy hiding a lock from the owner, status
-- and advance must answer KC002, the lock not found (the 0.2.0 key read saw
-- the row, then failed with XX000 "vanished").
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
SELECT pg_postmaster_start_time() AS server_started \gset
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('OW-A', 10, 100), ('OW-B', 5, 40);

-- the owner: no superuser, the privileges the functions need on the
-- extension's schema, tables and sequences, and every function of the
-- extension
DROP ROLE IF EXISTS regress_checkout_owner;
CREATE ROLE regress_checkout_owner NOSUPERUSER NOLOGIN;
GRANT USAGE ON SCHEMA checkout TO regress_checkout_owner;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA checkout TO regress_checkout_owner;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA checkout TO regress_checkout_owner;
GRANT USAGE ON SCHEMA checkout_test TO regress_checkout_owner;
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT d.objid FROM pg_depend d
             WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass
               AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'checkout') AND d.deptype = 'e'
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO regress_checkout_owner', f);
    END LOOP;
END $$;
SELECT count(*) > 0 AND bool_and(p.proowner = 'regress_checkout_owner'::regrole) AS every_function_owned
FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
WHERE d.classid = 'pg_proc'::regclass AND d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'checkout') AND d.deptype = 'e';

-- 1. with all those privileges, a whole checkout
SELECT lock_id AS l1 FROM checkout_start('ow-1', 'ow', checkout_test.one_line('OW-A', 2, 100)) \gset
SELECT state, phase, total FROM checkout_advance(:l1, 'ow', until => 'price_lock');
SELECT state, phase FROM checkout_advance(:l1, 'ow', checkout_test.pay('a1', 200), until => 'order_creation');
SELECT state, phase, order_ref FROM checkout_advance(:l1, 'ow', checkout_test.pay('c1', 200), until => 'stock_commit');
SELECT table_name, direct FROM checkout_test.table_access();

-- 2. INSERT and UPDATE revoked on inventory and reservations: a start still
-- works (it writes neither), the reservation is refused as the statements
-- are (42501), and nothing is reserved
REVOKE INSERT, UPDATE ON checkout.inventory, checkout.reservations FROM regress_checkout_owner;
SELECT table_name, direct, reason ~* '(privilege|permission|grant|revoke|insert|update|regress_checkout_owner)' AS reason_names_it
FROM checkout_test.table_access() WHERE table_name IN ('inventory', 'reservations');
SELECT lock_id AS l2 FROM checkout_start('ow-2', 'ow',
       checkout_test.lines(checkout_test.line('1', 'OW-A', 1, 100), checkout_test.line('2', 'OW-B', 1, 40))) \gset
SELECT regexp_replace(checkout_test.err(format('SELECT checkout_advance(%s, %L, until => %L)', :l2, 'ow', 'price_lock')),
       'table \w+', 'table T') AS refused;
SELECT state, phase FROM checkout.locks WHERE lock_id = :l2;
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
SELECT count(*) AS held FROM checkout.reservations;
-- what the owner's own statements get
SET ROLE regress_checkout_owner;
SELECT checkout_test.err(format($$INSERT INTO checkout.reservations (lock_id, sku, quantity) VALUES (%s, 'OW-A', 1)$$, :l2));
SELECT checkout_test.err($$UPDATE checkout.inventory SET reserved = reserved + 1 WHERE sku = 'OW-A'$$);
RESET ROLE;
-- the privileges back: the same lock goes on
GRANT INSERT, UPDATE ON checkout.inventory, checkout.reservations TO regress_checkout_owner;
SELECT state, phase FROM checkout_advance(:l2, 'ow', until => 'price_lock');
SELECT sku, quantity FROM checkout.reservations WHERE lock_id = :l2 ORDER BY sku;
-- UPDATE revoked on inventory alone: releasing the stock is refused (42501),
-- the lock stays active with its stock held
REVOKE UPDATE ON checkout.inventory FROM regress_checkout_owner;
SELECT checkout_test.err(format('SELECT checkout_cancel(%s, %L)', :l2, 'ow'));
SELECT state, (SELECT count(*) FROM checkout.reservations WHERE lock_id = :l2) AS held FROM checkout.locks WHERE lock_id = :l2;
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
GRANT UPDATE ON checkout.inventory TO regress_checkout_owner;
SELECT state FROM checkout_cancel(:l2, 'ow');

-- 3. row security on locks, a policy hiding carts 'ow-hidden%' from the
-- owner: a hidden lock is not found (KC002) by status, advance, cancel and
-- fail, and stays as it was; a visible one works
SELECT lock_id AS hidden FROM checkout_start('ow-hidden-1', 'ow', checkout_test.one_line('OW-B', 1, 40)) \gset
SELECT lock_id AS visible FROM checkout_start('ow-3', 'ow', checkout_test.one_line('OW-B', 1, 40)) \gset
ALTER TABLE checkout.locks ENABLE ROW LEVEL SECURITY;
CREATE POLICY ow_visible ON checkout.locks TO regress_checkout_owner
    USING (cart_id NOT LIKE 'ow-hidden%') WITH CHECK (true);
SELECT table_name, direct, reason ~* '(row security|row-level|rls|polic)' AS reason_names_it
FROM checkout_test.table_access() WHERE table_name = 'locks';
SELECT checkout_test.err(format('SELECT checkout_status(%s, %L)', :hidden, 'ow'));
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L)', :hidden, 'ow'));
SELECT checkout_test.err(format('SELECT checkout_cancel(%s, %L)', :hidden, 'ow'));
SELECT checkout_test.err(format('SELECT checkout_fail(%s, %L, %L)', :hidden, 'ow', 'x'));
SELECT state, phase FROM checkout.locks WHERE lock_id = :hidden;
SELECT state, phase FROM checkout_status(:visible, 'ow');
SELECT state, phase, total FROM checkout_advance(:visible, 'ow', until => 'price_lock');
SELECT state FROM checkout_cancel(:visible, 'ow');
-- what the owner's own statement sees
SET ROLE regress_checkout_owner;
SELECT count(*) AS hidden_rows_seen FROM checkout.locks WHERE lock_id = :hidden;
RESET ROLE;
DROP POLICY ow_visible ON checkout.locks;
ALTER TABLE checkout.locks DISABLE ROW LEVEL SECURITY;
SELECT state FROM checkout_cancel(:hidden, 'ow');

SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
SELECT * FROM checkout_verify();
SELECT pg_postmaster_start_time() = :'server_started' AS server_not_restarted;

-- the tables and functions as the extension made them, for the tests after this one
DROP EXTENSION checkout;
CREATE EXTENSION checkout;
DROP OWNED BY regress_checkout_owner;
DROP ROLE regress_checkout_owner;
