-- Rows written without a statement (src/direct.c) against the SQL they
-- stand for: the rows a checkout leaves, a CHECK constraint added while the
-- session holds the table's prepared constraints, a savepoint rolled back
-- over them, and the SQL path, with a user's triggers firing for every row
-- and statement, when a table has code of its own.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('DW-A', 10, 100), ('DW-B', 5, 40);

-- 1. a whole checkout of two skus: every row as the SQL would leave it
SELECT lock_id AS l1 FROM checkout_start('dw-1', 'dw',
       checkout_test.lines(checkout_test.line('1', 'DW-B', 2, 40), checkout_test.line('2', 'DW-A', 1, 100))) \gset
SELECT line_no, line_id, sku, quantity, cart_price FROM checkout.lock_lines WHERE lock_id = :l1 ORDER BY line_no;
SELECT state, phase, total FROM checkout_advance(:l1, 'dw', until => 'price_lock');
SELECT sku, on_hand, reserved FROM checkout.inventory WHERE sku LIKE 'DW-%' ORDER BY sku;
SELECT lock_id AS started, created_at AS started_at FROM checkout.locks WHERE lock_id = :l1 \gset
SELECT sku, quantity, reserved_at > :'started_at' AS reserved_at_set FROM checkout.reservations WHERE lock_id = :l1 ORDER BY sku;
SELECT line_id, sku, quantity, cart_price, locked_price, drift_percent,
       drift_percent = abs(locked_price::numeric - cart_price) * 100 / cart_price AS drift_as_sql,
       taken_at > :'started_at' AS taken_at_set
FROM checkout.price_snapshots WHERE lock_id = :l1 ORDER BY line_id;
SELECT state, phase FROM checkout_advance(:l1, 'dw', checkout_test.pay('a1', 180));
SELECT state, phase, order_ref FROM checkout_advance(:l1, 'dw', checkout_test.pay('c1', 180), until => 'stock_commit');
SELECT order_ref, total, source, status, created_at > :'started_at' AS created_at_set FROM checkout.orders WHERE lock_id = :l1;
SELECT sku, on_hand, reserved FROM checkout.inventory WHERE sku LIKE 'DW-%' ORDER BY sku;
SELECT count(*) AS reservations_left FROM checkout.reservations WHERE lock_id = :l1;
SELECT state, phase, total, finished_at > created_at AS finished_at_set, auth_reference, auth_amount,
       capture_reference, capture_amount FROM checkout.locks WHERE lock_id = :l1;

-- 2. a CHECK constraint added after this session wrote the table is enforced
-- at once (23514, and the call changes nothing); dropped, it no longer applies
ALTER TABLE checkout.inventory ADD CONSTRAINT dw_at_most_two_reserved
    CHECK (sku NOT LIKE 'DW-%' OR reserved <= 2);
SELECT lock_id AS l2 FROM checkout_start('dw-2', 'dw', checkout_test.one_line('DW-A', 3, 100)) \gset
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, until => %L)', :l2, 'dw', 'price_lock'));
SELECT state, phase FROM checkout.locks WHERE lock_id = :l2;
SELECT reserved FROM checkout.inventory WHERE sku = 'DW-A';
ALTER TABLE checkout.inventory DROP CONSTRAINT dw_at_most_two_reserved;
SELECT state, phase FROM checkout_advance(:l2, 'dw', until => 'price_lock');
SELECT reserved FROM checkout.inventory WHERE sku = 'DW-A';
SELECT state FROM checkout_cancel(:l2, 'dw');

-- 3. rolled back to a savepoint, the rows written are gone, and the next
-- call finds the lock as it was
BEGIN;
SELECT lock_id AS l3 FROM checkout_start('dw-3', 'dw', checkout_test.one_line('DW-B', 1, 40)) \gset
SAVEPOINT before_reserving;
SELECT state, phase FROM checkout_advance(:l3, 'dw', until => 'price_lock');
ROLLBACK TO SAVEPOINT before_reserving;
SELECT phase, (SELECT count(*) FROM checkout.reservations WHERE lock_id = :l3) AS held,
       (SELECT count(*) FROM checkout.price_snapshots WHERE lock_id = :l3) AS snapshots,
       (SELECT reserved FROM checkout.inventory WHERE sku = 'DW-B') AS reserved
FROM checkout.locks WHERE lock_id = :l3;
SELECT state, phase FROM checkout_advance(:l3, 'dw', until => 'price_lock');
SELECT state FROM checkout_cancel(:l3, 'dw');
COMMIT;

-- 4. with a trigger of the application's own on every table written, each
-- table is written by SQL: the triggers see every row and every statement,
-- and the checkout ends the same
CREATE TABLE dw_audit (tbl text, op text, level text);
CREATE FUNCTION dw_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.dw_audit VALUES (TG_TABLE_NAME, TG_OP, TG_LEVEL);
    RETURN NULL;
END $$;
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['locks', 'lock_lines', 'inventory', 'reservations', 'price_snapshots', 'orders'] LOOP
        EXECUTE format('CREATE TRIGGER dw_audit_row AFTER INSERT OR UPDATE OR DELETE ON checkout.%I '
                       'FOR EACH ROW EXECUTE FUNCTION public.dw_audit()', t);
        EXECUTE format('CREATE TRIGGER dw_audit_statement AFTER INSERT OR UPDATE OR DELETE ON checkout.%I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION public.dw_audit()', t);
    END LOOP;
END $$;
SELECT lock_id AS l4 FROM checkout_start('dw-4', 'dw', checkout_test.one_line('DW-A', 2, 100)) \gset
SELECT state, phase, total FROM checkout_advance(:l4, 'dw', until => 'price_lock');
SELECT state, phase FROM checkout_advance(:l4, 'dw', checkout_test.pay('a4', 200));
SELECT state, phase, order_ref FROM checkout_advance(:l4, 'dw', checkout_test.pay('c4', 200), until => 'stock_commit');
SELECT tbl, op, level, count(*) FROM dw_audit GROUP BY tbl, op, level ORDER BY tbl, op, level;
SELECT sku, on_hand, reserved FROM checkout.inventory WHERE sku = 'DW-A';
SELECT count(*) AS reservations_left FROM checkout.reservations WHERE lock_id = :l4;
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['locks', 'lock_lines', 'inventory', 'reservations', 'price_snapshots', 'orders'] LOOP
        EXECUTE format('DROP TRIGGER dw_audit_row ON checkout.%I', t);
        EXECUTE format('DROP TRIGGER dw_audit_statement ON checkout.%I', t);
    END LOOP;
END $$;
DROP FUNCTION dw_audit();
DROP TABLE dw_audit;

