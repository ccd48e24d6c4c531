-- Issue 19, the search_path finding: a table with a user's trigger is written
-- by SQL statements, so that the trigger runs as it would for any statement.
-- A trigger function that pins its own search_path (SET search_path =
-- tsp_app, the usual advice for functions) must resolve its unqualified names
-- in that schema during a checkout.  The 0.2.0 code pushed an override
-- search path (PushOverrideSearchPath, removed from PostgreSQL 17) around
-- its statements, which outranks the function's SET: the trigger saw
-- pg_catalog only, and the checkout failed with 42P01.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
SELECT pg_postmaster_start_time() AS server_started \gset
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('TS-A', 10, 100);

CREATE SCHEMA tsp_app;
CREATE TABLE tsp_app.order_log (order_ref text, total bigint, source text, label text);
CREATE TABLE tsp_app.line_log (lock_id bigint, line_id text, sku text);
CREATE FUNCTION tsp_app.label(ref text) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT 'order ' || ref $$;
-- unqualified table and function names, resolved in tsp_app by the SET
CREATE FUNCTION tsp_app.log_order() RETURNS trigger
LANGUAGE plpgsql SET search_path = tsp_app
AS $$
BEGIN
    INSERT INTO order_log VALUES (NEW.order_ref, NEW.total, NEW.source, label(NEW.order_ref));
    RETURN NULL;
END
$$;
CREATE FUNCTION tsp_app.log_line() RETURNS trigger
LANGUAGE plpgsql SET search_path = tsp_app, pg_catalog
AS $$
BEGIN
    -- logged only when the trigger searches exactly its own path
    INSERT INTO line_log SELECT NEW.lock_id, NEW.line_id, NEW.sku
    WHERE current_schemas(false) = '{tsp_app,pg_catalog}';
    RETURN NEW;
END
$$;
CREATE TRIGGER tsp_log_order AFTER INSERT ON checkout.orders FOR EACH ROW EXECUTE FUNCTION tsp_app.log_order();
CREATE TRIGGER tsp_log_line BEFORE INSERT ON checkout.lock_lines FOR EACH ROW EXECUTE FUNCTION tsp_app.log_line();

-- 1. a whole checkout: the lines and the order logged by the triggers
SELECT lock_id AS l1 FROM checkout_start('ts-1', 'ts',
       checkout_test.lines(checkout_test.line('1', 'TS-A', 1, 100), checkout_test.line('2', 'TS-A', 2, 100))) \gset
SELECT line_id, sku FROM tsp_app.line_log ORDER BY line_id;
SELECT state, phase, total FROM checkout_advance(:l1, 'ts', until => 'price_lock');
SELECT state, phase FROM checkout_advance(:l1, 'ts', checkout_test.pay('a1', 300), until => 'order_creation');
SELECT * FROM tsp_app.order_log;
SELECT state, phase, order_ref FROM checkout_advance(:l1, 'ts', checkout_test.pay('c1', 300), until => 'stock_commit');

-- 2. an application's own order_ref goes through the same trigger
SELECT lock_id AS l2 FROM checkout_start('ts-2', 'ts', checkout_test.one_line('TS-A', 1, 100)) \gset
SELECT state, phase, order_ref FROM checkout_advance(:l2, 'ts',
       checkout_test.pay('a2', 100) || '{"order_ref": "APP-2"}', until => 'order_creation');
SELECT * FROM tsp_app.order_log ORDER BY order_ref;
SELECT state FROM checkout_cancel(:l2, 'ts');

-- 3. the caller's search_path does not reach the extension's statements: a
-- table named like the extension's in a schema searched first changes nothing
CREATE SCHEMA tsp_shadow;
CREATE TABLE tsp_shadow.orders (LIKE checkout.orders);
SET search_path = tsp_shadow, public;
SELECT lock_id AS l3 FROM checkout_start('ts-3', 'ts', checkout_test.one_line('TS-A', 1, 100)) \gset
SELECT state, phase, order_ref FROM checkout_advance(:l3, 'ts', checkout_test.pay('a3', 100), until => 'order_creation');
SELECT count(*) AS shadow_rows FROM tsp_shadow.orders;
SELECT count(*) AS orders FROM checkout.orders;
SELECT state FROM checkout_cancel(:l3, 'ts');
RESET search_path;

SELECT sku, on_hand, reserved FROM checkout.inventory;
SELECT * FROM checkout_verify();
SELECT pg_postmaster_start_time() = :'server_started' AS server_not_restarted;

-- the tables as the extension made them, for the tests after this one
DROP EXTENSION checkout;
DROP SCHEMA tsp_app, tsp_shadow CASCADE;
CREATE EXTENSION checkout;
