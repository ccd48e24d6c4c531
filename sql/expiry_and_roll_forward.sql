-- Expiry: derived status, expiry on touch, checkout_cleanup_expired() in
-- batches, and the roll-forward rule for captured payments.  The test
-- database is not in checkout.database, so no worker sweeps it meanwhile.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('EX-A', 20, 100);

-- a reserved lock, a captured lock and three reserved locks for the batch sweep
SELECT lock_id AS r FROM checkout_start('ex-reserved', 's', '[{"line_id":"1","sku":"EX-A","quantity":2,"unit_price":100}]', interval '1 second') \gset
SELECT state, phase FROM checkout_advance(:r, 's', until => 'price_lock');
SELECT lock_id AS p FROM checkout_start('ex-paid', 's', '[{"line_id":"1","sku":"EX-A","quantity":3,"unit_price":100}]', interval '1 second') \gset
SELECT state, phase FROM checkout_advance(:p, 's', '{"reference":"auth-p","amount":300}', until => 'order_creation');
SELECT state, phase FROM checkout_advance(:p, 's', '{"reference":"cap-p","amount":300}', until => 'payment_capture');
SELECT count(*) FROM (SELECT checkout_advance((checkout_start('ex-batch-' || g, 's', '[{"line_id":"1","sku":"EX-A","quantity":1,"unit_price":100}]', interval '1 second')).lock_id, 's', until => 'inventory_reservation')
                      FROM generate_series(1, 3) g) x;
SELECT lock_id AS live FROM checkout_start('ex-live', 's', '[{"line_id":"1","sku":"EX-A","quantity":1,"unit_price":100}]') \gset
SELECT state, phase FROM checkout_advance(:live, 's', until => 'inventory_reservation');
SELECT on_hand, reserved FROM checkout.inventory WHERE sku = 'EX-A';

SELECT pg_sleep(1.2);

-- status derives the outcome before any sweep, and changes nothing
SELECT state, phase FROM checkout_status(:r, 's');
SELECT state, phase FROM checkout_status(:p, 's');
SELECT state FROM checkout.locks WHERE lock_id IN (:r, :p) ORDER BY lock_id;
-- protection ends with the deadline
CREATE TEMP TABLE ex_cart_lines (cart_id text);
CREATE TRIGGER protect BEFORE INSERT ON ex_cart_lines FOR EACH ROW EXECUTE FUNCTION checkout.protect_cart('cart_id');
INSERT INTO ex_cart_lines VALUES ('ex-reserved');

-- touching an overdue lock expires it and returns the row (no error)
SELECT state, phase, failed_phase, error_code, error_message FROM checkout_advance(:r, 's');
-- a captured lock rolls forward: stock sold, completed
SELECT state, phase, order_ref IS NOT NULL AS has_order FROM checkout_advance(:p, 's', until => 'payment_capture');
SELECT count(*) AS refunds FROM checkout.compensations WHERE lock_id = :p;

-- the sweep, in batches of 2: 3 due locks, the live one untouched
SELECT checkout_cleanup_expired(2) AS first_batch;
SELECT checkout_cleanup_expired(2) AS second_batch;
SELECT checkout_cleanup_expired() AS nothing_left;
SELECT state, error_code, count(*) FROM checkout.locks WHERE cart_id LIKE 'ex-%' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT on_hand, reserved FROM checkout.inventory WHERE sku = 'EX-A';
SELECT pg_catalog.sum(quantity) AS held FROM checkout.reservations r JOIN checkout.locks l USING (lock_id) WHERE l.cart_id LIKE 'ex-%';

-- a stale lock on the cart is expired by a new start on it
SELECT lock_id AS s1 FROM checkout_start('ex-stale', 'old', '[{"line_id":"1","sku":"EX-A","quantity":1,"unit_price":100}]', interval '1 second') \gset
SELECT state, phase FROM checkout_advance(:s1, 'old', until => 'inventory_reservation');
SELECT pg_sleep(1.1);
SELECT state, lock_id <> :s1 AS new_lock FROM checkout_start('ex-stale', 'new', '[{"line_id":"1","sku":"EX-A","quantity":1,"unit_price":100}]');
SELECT state, error_code FROM checkout_status(:s1, 'old');
SELECT on_hand, reserved FROM checkout.inventory WHERE sku = 'EX-A';
