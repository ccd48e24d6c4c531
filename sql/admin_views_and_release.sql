-- The admin's views: checkout.active_locks (what each active lock holds, its
-- age, whether it is overdue), checkout.stuck_reservations (stock held by
-- finished or overdue locks) and how docs/operations.md releases it: checkout_release
-- for one lock (once per lock, though the view has a row per sku) and
-- checkout_cleanup_expired for everything due.  One transaction, rolled
-- back; now() is fixed, so ages are exact.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
CREATE ROLE av_admin NOLOGIN IN ROLE checkout_admin;
CALL checkout_test.reset(7201);
BEGIN;
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('AV-A', 50, 100), ('AV-B', 50, 10);
CREATE FUNCTION pg_temp.lines(a int, b int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT checkout_test.lines(checkout_test.line('1', 'AV-A', a, 100), checkout_test.line('2', 'AV-B', b, 10)) $$;
-- 7201 holds 1 + 2, 7202 holds 3 + 4, 7203 has not reserved yet, 7204 completed
SELECT lock_id, state, phase FROM checkout_advance((checkout_start('av-1', 's1', pg_temp.lines(1, 2))).lock_id, 's1', until => 'inventory_reservation');
SELECT lock_id, state, phase FROM checkout_advance((checkout_start('av-2', 's2', pg_temp.lines(3, 4))).lock_id, 's2', until => 'price_lock');
SELECT lock_id, state, phase FROM checkout_start('av-3', 's3', pg_temp.lines(5, 6));
SELECT lock_id, state FROM checkout_advance((checkout_advance((checkout_start('av-4', 's4', pg_temp.lines(1, 1))).lock_id, 's4',
       '{"reference":"a4","amount":110}', until => 'order_creation')).lock_id, 's4', '{"reference":"c4","amount":110}', until => 'stock_commit');
-- started at different times: 7201 an hour ago and overdue, 7202 20 minutes ago
UPDATE checkout.locks SET created_at = now() - interval '1 hour', expires_at = now() - interval '45 minutes' WHERE lock_id = 7201;
UPDATE checkout.locks SET created_at = now() - interval '20 minutes', expires_at = now() + interval '10 minutes' WHERE lock_id = 7202;
UPDATE checkout.locks SET created_at = now() - interval '1 minute', expires_at = now() + interval '14 minutes' WHERE lock_id = 7203;

SET LOCAL ROLE av_admin;
SELECT lock_id, cart_id, session_id, phase, age, overdue, reservations,
       expires_at - created_at AS ttl
FROM checkout.active_locks ORDER BY created_at;
-- the oldest first, with the units each holds
SELECT lock_id, cart_id, age, (SELECT sum((r->>'quantity')::int) FROM jsonb_array_elements(reservations) r) AS units
FROM checkout.active_locks ORDER BY age DESC LIMIT 2;
SELECT lock_id, cart_id, state, sku, quantity, reason FROM checkout.stuck_reservations ORDER BY lock_id, sku;
SELECT locks_total, locks_active, locks_completed, skus, units_on_hand, units_reserved, reservations FROM checkout.stats;

-- release one abandoned lock (once, whatever number of skus it holds)
SAVEPOINT s;
SELECT r.lock_id, r.state, r.error_message
FROM (SELECT DISTINCT lock_id FROM checkout.stuck_reservations WHERE state = 'active') s,
     LATERAL checkout_release(s.lock_id, 'stuck, ticket 42') r;
SELECT count(*) AS stuck FROM checkout.stuck_reservations;
SELECT lock_id, reservations FROM checkout.active_locks ORDER BY lock_id;
ROLLBACK TO SAVEPOINT s;
-- or expire everything that is due (what the worker does)
SELECT checkout_cleanup_expired() AS expired;
SELECT lock_id, state, failed_phase, error_code FROM checkout.locks WHERE lock_id = 7201;
SELECT count(*) AS stuck FROM checkout.stuck_reservations;
SELECT sku, reserved, (SELECT sum(quantity) FROM checkout.reservations r WHERE r.sku = i.sku) AS held
FROM checkout.inventory i ORDER BY sku;
SELECT * FROM checkout_verify();
-- a release needs an active lock and a reason
SAVEPOINT s;
SELECT * FROM checkout_release(7201, 'again');
ROLLBACK TO SAVEPOINT s;
SELECT * FROM checkout_release(7202, NULL);
ROLLBACK TO SAVEPOINT s;
SELECT * FROM checkout_release(7999, 'no such lock');
ROLLBACK TO SAVEPOINT s;
RESET ROLE;
ROLLBACK;
DROP ROLE av_admin;
RESET checkout.log_events;
