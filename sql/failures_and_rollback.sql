-- Business failures are returned, not raised; completed phases are rolled
-- back in reverse order.  Also checkout_fail, cancel, release, cart protection
-- and the caller's own transaction.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('FL-A', 3, 500), ('FL-B', 1, 100), ('FL-Z', 4, 0);

-- unknown sku: KC010 at cart validation
SELECT lock_id AS l1 FROM checkout_start('fl-1', 's', '[{"line_id":"1","sku":"FL-NOPE","quantity":1,"unit_price":1}]') \gset
SELECT state, phase, failed_phase, error_code, error_message FROM checkout_advance(:l1, 's', until => 'price_lock');

-- shortfall on the second sku: nothing reserved at all (all or nothing)
SELECT lock_id AS l2 FROM checkout_start('fl-2', 's', '[{"line_id":"1","sku":"FL-A","quantity":2,"unit_price":500},{"line_id":"2","sku":"FL-B","quantity":2,"unit_price":100}]') \gset
SELECT state, phase, failed_phase, error_code, error_message FROM checkout_advance(:l2, 's', until => 'price_lock');
SELECT sku, on_hand, reserved FROM checkout.inventory WHERE sku LIKE 'FL-%' ORDER BY sku;

-- the same sku on two lines is summed: 2 + 2 > 3
SELECT lock_id AS l3 FROM checkout_start('fl-3', 's', '[{"line_id":"1","sku":"FL-A","quantity":2,"unit_price":500},{"line_id":"2","sku":"FL-A","quantity":2,"unit_price":500}]') \gset
SELECT state, failed_phase, error_code, error_message FROM checkout_advance(:l3, 's', until => 'price_lock');

-- drift exactly at the tolerance passes (1%), above fails with KC012 and releases stock
UPDATE checkout.inventory SET unit_price = 505 WHERE sku = 'FL-A';
SELECT lock_id AS l4 FROM checkout_start('fl-4', 's', '[{"line_id":"1","sku":"FL-A","quantity":1,"unit_price":500}]') \gset
SELECT state, phase, total FROM checkout_advance(:l4, 's', until => 'price_lock');
SELECT drift_percent::numeric(6,2) FROM checkout.price_snapshots WHERE lock_id = :l4;
UPDATE checkout.inventory SET unit_price = 506 WHERE sku = 'FL-A';
SELECT lock_id AS l5 FROM checkout_start('fl-5', 's', '[{"line_id":"1","sku":"FL-A","quantity":1,"unit_price":500}]') \gset
SELECT state, phase, failed_phase, error_code, error_message FROM checkout_advance(:l5, 's', until => 'price_lock');
SELECT count(*) AS snapshots_of_failed_phase FROM checkout.price_snapshots WHERE lock_id = :l5;
SELECT sku, on_hand, reserved FROM checkout.inventory WHERE sku = 'FL-A';

-- zero-price lines lock a zero total
SELECT lock_id AS l6 FROM checkout_start('fl-6', 's', '[{"line_id":"1","sku":"FL-Z","quantity":3,"unit_price":0}]') \gset
SELECT state, phase, total FROM checkout_advance(:l6, 's', until => 'price_lock');
-- one payment payload serves one phase: the call stops before the capture
SELECT state, phase FROM checkout_advance(:l6, 's', '{"reference":"free","amount":0}', until => 'stock_commit');
SELECT state, phase FROM checkout_advance(:l6, 's', '{"reference":"free-cap","amount":0}', until => 'stock_commit');

-- authorisation amount mismatch: KC013, the refused authorisation must be voided
SELECT state FROM checkout_cancel(:l4, 's');
SELECT lock_id AS l7 FROM checkout_start('fl-7', 's', '[{"line_id":"1","sku":"FL-A","quantity":1,"unit_price":506}]') \gset
SELECT state, phase, failed_phase, error_code, error_message FROM checkout_advance(:l7, 's', '{"reference":"auth-7","amount":1}', until => 'stock_commit');
SELECT kind, reference, amount FROM checkout.compensations WHERE lock_id = :l7;

-- capture mismatch after authorisation and order: reverse rollback
SELECT lock_id AS l8 FROM checkout_start('fl-8', 's', '[{"line_id":"1","sku":"FL-A","quantity":1,"unit_price":506}]') \gset
SELECT state, phase FROM checkout_advance(:l8, 's', '{"reference":"auth-8","amount":506}', until => 'order_creation');
SELECT state, phase, failed_phase, error_code, error_message FROM checkout_advance(:l8, 's', '{"reference":"cap-8","amount":500}');
SELECT kind, reference, amount FROM checkout.compensations WHERE lock_id = :l8 ORDER BY compensation_id;
SELECT order_ref = 'CO-' || :l8 AS generated, status FROM checkout.orders WHERE lock_id = :l8;

-- cancel after capture: refund, order cancelled, stock released
SELECT lock_id AS l9 FROM checkout_start('fl-9', 's', '[{"line_id":"1","sku":"FL-A","quantity":2,"unit_price":506}]') \gset
SELECT state, phase FROM checkout_advance(:l9, 's', '{"reference":"auth-9","amount":1012}', until => 'order_creation');
SELECT state, phase FROM checkout_advance(:l9, 's', '{"reference":"cap-9","amount":1012}', until => 'payment_capture');
SELECT sku, reserved FROM checkout.inventory WHERE sku = 'FL-A';
SELECT state, phase, failed_phase, error_code FROM checkout_cancel(:l9, 's');
SELECT kind, reference, amount FROM checkout.compensations WHERE lock_id = :l9 ORDER BY compensation_id;
SELECT status FROM checkout.orders WHERE lock_id = :l9;
SELECT sku, reserved FROM checkout.inventory WHERE sku = 'FL-A';

-- the application reports a failure
SELECT lock_id AS l10 FROM checkout_start('fl-10', 's', '[{"line_id":"1","sku":"FL-A","quantity":1,"unit_price":506}]') \gset
SELECT state, phase FROM checkout_advance(:l10, 's', '{"reference":"auth-10","amount":506}', until => 'payment_authorization');
SELECT state, phase, failed_phase, error_code, error_message FROM checkout_fail(:l10, 's', 'card declined');
SELECT kind, reference FROM checkout.compensations WHERE lock_id = :l10;

-- admin release of another session's lock
SELECT lock_id AS l11 FROM checkout_start('fl-11', 'other', '[{"line_id":"1","sku":"FL-A","quantity":1,"unit_price":506}]') \gset
SELECT state, phase FROM checkout_advance(:l11, 'other', until => 'inventory_reservation');
SELECT state, error_message LIKE 'released by %: stuck in support ticket 7' AS logged_reason FROM checkout_release(:l11, 'stuck in support ticket 7');
SELECT sku, on_hand, reserved FROM checkout.inventory WHERE sku LIKE 'FL-%' ORDER BY sku;

-- cart protection on INSERT, UPDATE and DELETE, and switched off
CREATE TEMP TABLE app_cart_lines (cart_id text, sku text, quantity int);
INSERT INTO app_cart_lines VALUES ('fl-cart', 'FL-B', 1), ('fl-free', 'FL-B', 1);
CREATE TRIGGER cart_lines_locked BEFORE INSERT OR UPDATE OR DELETE ON app_cart_lines
  FOR EACH ROW EXECUTE FUNCTION checkout.protect_cart('cart_id');
SELECT lock_id AS l12 FROM checkout_start('fl-cart', 's', '[{"line_id":"1","sku":"FL-B","quantity":1,"unit_price":100}]') \gset
\set VERBOSITY sqlstate
INSERT INTO app_cart_lines VALUES ('fl-cart', 'FL-A', 1);
UPDATE app_cart_lines SET quantity = 2 WHERE cart_id = 'fl-cart';
UPDATE app_cart_lines SET cart_id = 'fl-cart' WHERE cart_id = 'fl-free';
DELETE FROM app_cart_lines WHERE cart_id = 'fl-cart';
\set VERBOSITY default
INSERT INTO app_cart_lines VALUES ('fl-free', 'FL-A', 1);
SET checkout.cart_protection = off;
UPDATE app_cart_lines SET quantity = 3 WHERE cart_id = 'fl-cart';
RESET checkout.cart_protection;
SELECT state FROM checkout_cancel(:l12, 's');
DELETE FROM app_cart_lines WHERE cart_id = 'fl-cart';
SELECT cart_id, sku, quantity FROM app_cart_lines ORDER BY cart_id, sku;

-- one transaction with the application's own writes
CREATE TEMP TABLE app_orders (cart_id text PRIMARY KEY);
BEGIN;
INSERT INTO app_orders VALUES ('fl-tx');
SELECT lock_id AS l13 FROM checkout_start('fl-tx', 's', '[{"line_id":"1","sku":"FL-B","quantity":1,"unit_price":100}]') \gset
SELECT state, phase FROM checkout_advance(:l13, 's', until => 'price_lock');
ROLLBACK;
SELECT (SELECT count(*) FROM app_orders) AS app_rows, (SELECT count(*) FROM checkout.locks WHERE cart_id = 'fl-tx') AS locks,
       (SELECT reserved FROM checkout.inventory WHERE sku = 'FL-B') AS reserved;
BEGIN;
INSERT INTO app_orders VALUES ('fl-tx');
SELECT lock_id AS l13 FROM checkout_start('fl-tx', 's', '[{"line_id":"1","sku":"FL-B","quantity":1,"unit_price":100}]') \gset
SELECT state, phase FROM checkout_advance(:l13, 's', until => 'price_lock');
COMMIT;
SELECT (SELECT count(*) FROM app_orders) AS app_rows, (SELECT count(*) FROM checkout.locks WHERE cart_id = 'fl-tx') AS locks,
       (SELECT reserved FROM checkout.inventory WHERE sku = 'FL-B') AS reserved;
-- a business failure inside the caller's transaction is kept only if it commits
BEGIN;
UPDATE checkout.inventory SET unit_price = 900 WHERE sku = 'FL-A';
SELECT lock_id AS l14 FROM checkout_start('fl-tx2', 's', '[{"line_id":"1","sku":"FL-A","quantity":1,"unit_price":506}]') \gset
SELECT state, error_code FROM checkout_advance(:l14, 's', until => 'price_lock');
ROLLBACK;
SELECT count(*) AS failed_records FROM checkout.locks WHERE cart_id = 'fl-tx2';
SELECT sku, on_hand, reserved FROM checkout.inventory WHERE sku LIKE 'FL-%' ORDER BY sku;
