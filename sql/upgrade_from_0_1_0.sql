-- Upgrading 0.1.0 -> 0.2.0 with live checkouts in several phases: the locks
-- taken before ALTER EXTENSION UPDATE finish after it, the ledger stays equal
-- to the reservations, and the update leaves the 0.2.0 schema.
SET client_min_messages = warning;
DROP EXTENSION checkout CASCADE;
CREATE EXTENSION checkout VERSION '0.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'checkout';
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('UP-A', 10, 500), ('UP-B', 10, 250);
CREATE TEMP TABLE live (name text PRIMARY KEY, lock_id bigint);
INSERT INTO live
SELECT 'started', lock_id FROM checkout_start('up-1', 'su', '[{"line_id":"1","sku":"UP-A","quantity":1,"unit_price":500}]');
INSERT INTO live
SELECT 'reserved', lock_id FROM checkout_advance((checkout_start('up-2', 'su',
    '[{"line_id":"1","sku":"UP-A","quantity":2,"unit_price":500}]')).lock_id, 'su', until => 'inventory_reservation');
INSERT INTO live
SELECT 'authorised', lock_id FROM checkout_advance((checkout_start('up-3', 'su',
    '[{"line_id":"1","sku":"UP-B","quantity":4,"unit_price":250}]')).lock_id, 'su',
    '{"reference":"auth-3","amount":1000}', until => 'payment_authorization');
INSERT INTO live
SELECT 'captured', lock_id FROM checkout_advance((checkout_advance((checkout_start('up-4', 'su',
    '[{"line_id":"1","sku":"UP-A","quantity":1,"unit_price":500}]')).lock_id, 'su',
    '{"reference":"auth-4","amount":500}', until => 'order_creation')).lock_id, 'su',
    '{"reference":"cap-4","amount":500}', until => 'payment_capture');
INSERT INTO live
SELECT 'abandoned', lock_id FROM checkout_advance((checkout_start('up-5', 'su',
    '[{"line_id":"1","sku":"UP-B","quantity":1,"unit_price":250}]')).lock_id, 'su', until => 'price_lock');
SELECT name, state, phase FROM live JOIN checkout.locks USING (lock_id) ORDER BY lock_id;
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;

ALTER EXTENSION checkout UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'checkout';
-- the 0.2.0 index set replaced 0.1.0's
SELECT indexname FROM pg_indexes WHERE schemaname = 'checkout' AND tablename = 'locks' ORDER BY 1;
-- a cart still has at most one active lock
\set VERBOSITY terse
SELECT checkout_start('up-1', 'other', '[{"line_id":"1","sku":"UP-A","quantity":1,"unit_price":500}]');
\set VERBOSITY default

-- finish every live lock through the 0.2.0 API
SELECT state, phase, total FROM checkout_advance((SELECT lock_id FROM live WHERE name = 'started'), 'su',
    '{"reference":"auth-1","amount":500}', until => 'payment_authorization');
SELECT state, phase, order_ref FROM checkout_advance((SELECT lock_id FROM live WHERE name = 'started'), 'su',
    '{"reference":"cap-1","amount":500}', until => 'stock_commit');
SELECT state, phase FROM checkout_cancel((SELECT lock_id FROM live WHERE name = 'reserved'), 'su');
SELECT state, failed_phase, error_code FROM checkout_advance((SELECT lock_id FROM live WHERE name = 'authorised'), 'su',
    '{"reference":"cap-3","amount":999}', until => 'payment_capture');
SELECT state, phase FROM checkout_advance((SELECT lock_id FROM live WHERE name = 'captured'), 'su', until => 'stock_commit');
-- the abandoned one falls due and is swept
UPDATE checkout.locks SET created_at = created_at - interval '1 hour', expires_at = now() - interval '1 second'
WHERE lock_id = (SELECT lock_id FROM live WHERE name = 'abandoned');
SELECT checkout_cleanup_expired();
SELECT name, state, phase, failed_phase, error_code FROM live JOIN checkout.locks USING (lock_id) ORDER BY lock_id;
SELECT kind, reference, amount FROM checkout.compensations ORDER BY compensation_id;
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
SELECT count(*) AS reservations_left FROM checkout.reservations;
SELECT * FROM checkout_verify();
-- payment metadata, new in 0.2.0, works on the updated schema
SELECT state, phase FROM checkout_advance((checkout_start('up-6', 'su',
    '[{"line_id":"1","sku":"UP-A","quantity":1,"unit_price":500}]')).lock_id, 'su',
    '{"reference":"auth-6","amount":500,"metadata":{"gateway_id":"pi_6"}}', until => 'payment_authorization');
SELECT phase, metadata FROM checkout.payment_metadata;
-- leave a fresh install of the current version for the tests that follow
DROP EXTENSION checkout;
CREATE EXTENSION checkout;
