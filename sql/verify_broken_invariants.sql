-- checkout_verify: no rows when all is well; each invariant broken by hand is
-- reported on its own (each break is undone with ROLLBACK TO SAVEPOINT), then
-- all at once; the repairs docs/operations.md gives put things right.  One
-- transaction, rolled back.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
CALL checkout_test.reset(7101);
BEGIN;
SELECT * FROM checkout_verify();

-- a healthy history, through the API
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('VF-A', 50, 100), ('VF-B', 50, 10);
CREATE FUNCTION pg_temp.lines(q int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT checkout_test.lines(checkout_test.line('1', 'VF-A', q, 100), checkout_test.line('2', 'VF-B', 1, 10)) $$;
-- 7101 completed
SELECT state FROM checkout_advance((checkout_advance((checkout_start('vf-done', 'vf', pg_temp.lines(1))).lock_id, 'vf',
       checkout_test.pay('auth-1', 110), until => 'order_creation')).lock_id, 'vf', checkout_test.pay('cap-1', 110), until => 'stock_commit');
-- 7102 failed after its order was created: order cancelled, authorisation to void
SELECT state FROM checkout_fail((checkout_advance((checkout_start('vf-failed', 'vf', pg_temp.lines(2))).lock_id, 'vf',
       checkout_test.pay('auth-2', 210), until => 'order_creation')).lock_id, 'vf', 'card declined');
-- 7103 captured, then released by an admin: capture to refund
SELECT state FROM checkout_release((checkout_advance((checkout_advance((checkout_start('vf-refunded', 'vf', pg_temp.lines(3))).lock_id, 'vf',
       checkout_test.pay('auth-3', 310), until => 'order_creation')).lock_id, 'vf', checkout_test.pay('cap-3', 310), until => 'payment_capture')).lock_id, 'refund test');
-- 7104 active, holding 4 + 1 units
SELECT state, phase FROM checkout_advance((checkout_start('vf-live', 'vf', pg_temp.lines(4))).lock_id, 'vf', until => 'price_lock');
SELECT * FROM checkout_verify();

-- 1. the ledger disagrees with the reservations
SAVEPOINT s;
UPDATE checkout.inventory SET reserved = reserved + 1 WHERE sku = 'VF-A';
SELECT * FROM checkout_verify();
ROLLBACK TO SAVEPOINT s;

-- 2. a finished lock still holds stock (the ledger agrees, so only this shows) ...
INSERT INTO checkout.reservations (lock_id, sku, quantity) VALUES (7101, 'VF-B', 2), (7102, 'VF-A', 3);
UPDATE checkout.inventory i SET reserved = i.reserved + r.quantity
FROM checkout.reservations r WHERE r.lock_id IN (7101, 7102) AND r.sku = i.sku;
SELECT * FROM checkout_verify();
SELECT lock_id, cart_id, state, sku, quantity, reason FROM checkout.stuck_reservations ORDER BY lock_id, sku;
-- ... the repair of docs/operations.md (superuser): drop those reservations and take them off the ledger
WITH gone AS (
    DELETE FROM checkout.reservations r USING checkout.locks l
    WHERE l.lock_id = r.lock_id AND l.state <> 'active'
    RETURNING r.sku, r.quantity)
UPDATE checkout.inventory i SET reserved = i.reserved - g.q
FROM (SELECT sku, sum(quantity) AS q FROM gone GROUP BY sku) g WHERE i.sku = g.sku;
SELECT * FROM checkout_verify();

-- 3. an active lock long past its deadline: not yet at 4 minutes overdue, at 6 it is
SAVEPOINT s;
UPDATE checkout.locks SET created_at = now() - interval '30 minutes', expires_at = now() - interval '4 minutes' WHERE lock_id = 7104;
SELECT * FROM checkout_verify();
UPDATE checkout.locks SET expires_at = now() - interval '6 minutes' WHERE lock_id = 7104;
SELECT * FROM checkout_verify();
-- its stock shows as stuck; the remedy of docs/operations.md: expire what is due
SELECT lock_id, cart_id, state, sku, quantity, reason FROM checkout.stuck_reservations ORDER BY lock_id, sku;
SELECT checkout_cleanup_expired() AS expired;
SELECT * FROM checkout_verify();
SELECT count(*) AS stuck FROM checkout.stuck_reservations;
ROLLBACK TO SAVEPOINT s;

-- 4. a completed lock without a captured payment
SAVEPOINT s;
UPDATE checkout.locks SET capture_reference = NULL, capture_amount = NULL WHERE lock_id = 7101;
SELECT * FROM checkout_verify();
ROLLBACK TO SAVEPOINT s;

-- 5. the order of a failed lock is not cancelled
SAVEPOINT s;
UPDATE checkout.orders SET status = 'created', cancelled_at = NULL WHERE lock_id = 7102;
SELECT * FROM checkout_verify();
ROLLBACK TO SAVEPOINT s;

-- 6. a rolled-back payment without its compensation (void, refund)
SAVEPOINT s;
DELETE FROM checkout.compensations WHERE lock_id IN (7102, 7103);
SELECT * FROM checkout_verify();
ROLLBACK TO SAVEPOINT s;

-- all of them at once, sorted by invariant and subject
UPDATE checkout.inventory SET reserved = reserved + 1 WHERE sku = 'VF-A';
INSERT INTO checkout.reservations (lock_id, sku, quantity) VALUES (7103, 'VF-B', 1);
UPDATE checkout.inventory SET reserved = reserved + 1 WHERE sku = 'VF-B';
UPDATE checkout.locks SET created_at = now() - interval '1 hour', expires_at = now() - interval '10 minutes' WHERE lock_id = 7104;
UPDATE checkout.locks SET capture_reference = NULL WHERE lock_id = 7101;
UPDATE checkout.orders SET status = 'created' WHERE lock_id = 7102;
DELETE FROM checkout.compensations WHERE lock_id = 7103;
SELECT * FROM checkout_verify();
ROLLBACK;
RESET checkout.log_events;
