-- Upgrading 0.2.0 -> 0.3.0 with live checkouts in several phases: the 0.3.0
-- library serves the 0.2.0 schema until ALTER EXTENSION UPDATE (its status
-- row has ten fields then), the locks taken before the update finish after
-- it, and the update leaves the 0.3.0 schema.
SET client_min_messages = warning;
DROP EXTENSION checkout CASCADE;
CREATE EXTENSION checkout VERSION '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'checkout';
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('U3-A', 10, 500), ('U3-B', 10, 250);
CREATE TEMP TABLE live (name text PRIMARY KEY, lock_id bigint);
-- the ten fields of 0.2.0's status row, from the 0.3.0 library
SELECT lock_id, state, (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(to_jsonb(s)) k) AS fields
FROM checkout_start('u3-0', 'su', '[{"line_id":"1","sku":"U3-A","quantity":1,"unit_price":500}]') s;
INSERT INTO live
SELECT 'started', lock_id FROM checkout_status(1, 'su');
INSERT INTO live
SELECT 'reserved', lock_id FROM checkout_advance((checkout_start('u3-2', 'su',
    '[{"line_id":"1","sku":"U3-A","quantity":2,"unit_price":500}]')).lock_id, 'su', until => 'inventory_reservation');
INSERT INTO live
SELECT 'authorised', lock_id FROM checkout_advance((checkout_start('u3-3', 'su',
    '[{"line_id":"1","sku":"U3-B","quantity":4,"unit_price":250}]')).lock_id, 'su',
    '{"reference":"auth-3","amount":1000}', until => 'payment_authorization');
INSERT INTO live
SELECT 'captured', lock_id FROM checkout_advance((checkout_advance((checkout_start('u3-4', 'su',
    '[{"line_id":"1","sku":"U3-A","quantity":1,"unit_price":500}]')).lock_id, 'su',
    '{"reference":"auth-4","amount":500}', until => 'order_creation')).lock_id, 'su',
    '{"reference":"cap-4","amount":500}', until => 'payment_capture');
INSERT INTO live
SELECT 'abandoned', lock_id FROM checkout_advance((checkout_start('u3-5', 'su',
    '[{"line_id":"1","sku":"U3-B","quantity":1,"unit_price":250}]')).lock_id, 'su', until => 'price_lock');
SELECT name, state, phase FROM live JOIN checkout.locks USING (lock_id) ORDER BY lock_id;
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;

ALTER EXTENSION checkout UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'checkout';
SELECT string_agg(attname, ', ' ORDER BY attnum) AS status_fields
FROM pg_attribute WHERE attrelid = 'checkout.status'::regclass AND attnum > 0 AND NOT attisdropped;
-- (as it answers with direct_access on: make test runs this file both ways)
BEGIN;
SET LOCAL checkout.direct_access = on;
SELECT * FROM checkout.table_access();
COMMIT;

-- stripe both skus while the reservations made by 0.2.0 are live: each
-- lock's reservation goes whole into the stripe its lock hashes to
-- (lock_id % n + 1), and the locks finish from there
SELECT checkout_stripe('U3-A', 3) AS u3_a, checkout_stripe('U3-B', 4) AS u3_b;
SELECT name, sku, stripe, quantity FROM live JOIN checkout.reservations USING (lock_id) ORDER BY lock_id, sku;
SELECT sku, stripe, on_hand, reserved FROM checkout.inventory_stripes ORDER BY sku, stripe;
SELECT * FROM checkout.stock ORDER BY sku;
SELECT * FROM checkout_verify();

-- finish every live lock through the 0.3.0 API, which says what each call did
SELECT state, phase, phases_run, ended FROM checkout_advance((SELECT lock_id FROM live WHERE name = 'started'), 'su',
    '{"reference":"auth-1","amount":500}', until => 'payment_authorization');
-- (the lock started before the update reserves from its own stripe)
SELECT sku, stripe, quantity FROM checkout.reservations WHERE lock_id = (SELECT lock_id FROM live WHERE name = 'started');
SELECT state, phase, phases_run, ended FROM checkout_advance((SELECT lock_id FROM live WHERE name = 'started'), 'su',
    '{"reference":"cap-1","amount":500}', until => 'stock_commit');
SELECT state, phase, phases_run, ended FROM checkout_cancel((SELECT lock_id FROM live WHERE name = 'reserved'), 'su');
SELECT state, failed_phase, error_code, phases_run, ended FROM checkout_advance((SELECT lock_id FROM live WHERE name = 'authorised'), 'su',
    '{"reference":"cap-3","amount":999}', until => 'payment_capture');
SELECT state, phase, phases_run, ended FROM checkout_advance((SELECT lock_id FROM live WHERE name = 'captured'), 'su', until => 'stock_commit');
-- the abandoned one falls due and is swept
UPDATE checkout.locks SET created_at = created_at - interval '1 hour', expires_at = now() - interval '1 second'
WHERE lock_id = (SELECT lock_id FROM live WHERE name = 'abandoned');
SELECT checkout_cleanup_expired();
SELECT name, state, phase, failed_phase, error_code FROM live JOIN checkout.locks USING (lock_id) ORDER BY lock_id;
SELECT kind, reference, amount FROM checkout.compensations ORDER BY compensation_id;
-- every sale and release left the stripes it recorded: nothing reserved in
-- any, 2 sold from U3-A's stripe 2 (the started and the captured lock's)
SELECT t.sku, t.stripe, t.on_hand, t.reserved FROM checkout.inventory_stripes t ORDER BY t.sku, t.stripe;
SELECT * FROM checkout.stock ORDER BY sku;
SELECT count(*) AS reservations_left FROM checkout.reservations;
SELECT * FROM checkout_verify();
-- folded, the inventory rows hold the totals the unstriped skus would
SELECT checkout_rebalance() >= 0 AS rebalanced;
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
-- leave a fresh install of the current version for the tests that follow
DROP EXTENSION checkout;
CREATE EXTENSION checkout;
