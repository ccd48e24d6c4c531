-- Issue 19: a unique index the DBA adds to a table the extension writes
-- (here: one live order per cart).  A checkout whose write breaks it is
-- refused as the INSERT statement is refused (23505, naming the index) and
-- changes nothing; it is not reported as an order_ref in use (KC020), which
-- only the order_ref's own key may answer.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
SELECT pg_postmaster_start_time() AS server_started \gset
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('UI-A', 20, 40);
CREATE UNIQUE INDEX ui_one_live_order_per_cart ON checkout.orders (cart_id) WHERE status = 'created';

-- the first order of cart ui-1
SELECT lock_id AS l1 FROM checkout_start('ui-1', 'ui', checkout_test.one_line('UI-A', 1, 40)) \gset
SELECT state, phase, order_ref FROM checkout_advance(:l1, 'ui', checkout_test.pay('a1', 40), until => 'order_creation');
SELECT state, phase, order_ref FROM checkout_advance(:l1, 'ui', checkout_test.pay('c1', 40), until => 'stock_commit');
-- a second order of the same cart: refused by the index, for the order the
-- extension names and for one the application names
SELECT lock_id AS l2 FROM checkout_start('ui-1', 'ui', checkout_test.one_line('UI-A', 1, 40)) \gset
SELECT state, phase FROM checkout_advance(:l2, 'ui', checkout_test.pay('a2', 40), until => 'payment_authorization');
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L)', :l2, 'ui'));
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, %L)', :l2, 'ui', '{"order_ref": "APP-2"}'));
SELECT phase, (SELECT count(*) FROM checkout.orders WHERE lock_id = :l2) AS orders FROM checkout.locks WHERE lock_id = :l2;
-- the statement's own answer
SELECT checkout_test.err(format($$INSERT INTO checkout.orders (order_ref, lock_id, cart_id, total, source) VALUES ('X-2', %s, 'ui-1', 40, 'application')$$, :l2));
-- an order_ref another lock uses is still KC020
SELECT lock_id AS l3 FROM checkout_start('ui-3', 'ui', checkout_test.one_line('UI-A', 1, 40)) \gset
SELECT state, phase, order_ref FROM checkout_advance(:l3, 'ui', checkout_test.pay('a3', 40) || '{"order_ref": "APP-9"}',
       until => 'order_creation');
SELECT lock_id AS l4 FROM checkout_start('ui-4', 'ui', checkout_test.one_line('UI-A', 1, 40)) \gset
SELECT state, phase FROM checkout_advance(:l4, 'ui', checkout_test.pay('a4', 40), until => 'payment_authorization');
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, %L)', :l4, 'ui', '{"order_ref": "APP-9"}'));
SELECT state FROM checkout_cancel(:l4, 'ui');
-- with the first order cancelled, the cart may have another
SELECT state FROM checkout_cancel(:l3, 'ui');
UPDATE checkout.orders SET status = 'cancelled' WHERE lock_id = :l1;
SELECT state, phase, order_ref FROM checkout_advance(:l2, 'ui', '{}', until => 'order_creation');
SELECT state FROM checkout_cancel(:l2, 'ui');

SELECT sku, on_hand, reserved FROM checkout.inventory;
SELECT pg_postmaster_start_time() = :'server_started' AS server_not_restarted;

DROP INDEX checkout.ui_one_live_order_per_cart;
