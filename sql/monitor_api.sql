-- checkout_monitor and checkout.stats follow a history made through the API
-- (as differences from what they said before, since earlier tests share the
-- database): started, every outcome, failures by code and phase, durations,
-- drift warnings, active locks, units reserved, open compensations.
SET client_min_messages = warning;
SET checkout.log_events = 'none';
CREATE FUNCTION pg_temp.line(sku text, q int, price bigint) RETURNS jsonb LANGUAGE sql
  AS $$ SELECT jsonb_build_array(jsonb_build_object('line_id', '1', 'sku', sku, 'quantity', q, 'unit_price', price)) $$;
CREATE FUNCTION pg_temp.pay(ref text, amount bigint) RETURNS jsonb LANGUAGE sql
  AS $$ SELECT jsonb_build_object('reference', ref, 'amount', amount) $$;
SELECT * FROM checkout_monitor(1) \gset m0_
SELECT * FROM checkout.stats \gset s0_
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('MA-A', 20, 100), ('MA-B', 1, 50);

-- two completed (one of them in two calls), two failed (stock, drift), one
-- cancelled, one expired after its authorisation, one active with a drift warning
SELECT state FROM checkout_advance((checkout_advance((checkout_start('ma-ok-1', 'ma', pg_temp.line('MA-A', 2, 100))).lock_id, 'ma',
       pg_temp.pay('auth-1', 200), until => 'order_creation')).lock_id, 'ma', pg_temp.pay('cap-1', 200), until => 'stock_commit');
SELECT lock_id AS ok2 FROM checkout_advance((checkout_start('ma-ok-2', 'ma', pg_temp.line('MA-A', 1, 100))).lock_id, 'ma',
       pg_temp.pay('auth-2', 100), until => 'order_creation') \gset
SELECT pg_sleep(0.05);
SELECT state FROM checkout_advance(:ok2, 'ma', pg_temp.pay('cap-2', 100), until => 'stock_commit');
SELECT state, error_code FROM checkout_advance((checkout_start('ma-short', 'ma', pg_temp.line('MA-B', 5, 50))).lock_id, 'ma', until => 'price_lock');
SELECT state, error_code FROM checkout_advance((checkout_start('ma-drift', 'ma', pg_temp.line('MA-A', 1, 90))).lock_id, 'ma', until => 'price_lock');
SELECT state FROM checkout_cancel((checkout_start('ma-cancel', 'ma', pg_temp.line('MA-A', 1, 100))).lock_id, 'ma');
SELECT lock_id AS ex FROM checkout_advance((checkout_start('ma-expire', 'ma', pg_temp.line('MA-A', 3, 100))).lock_id, 'ma',
       pg_temp.pay('auth-6', 300), until => 'payment_authorization') \gset
BEGIN;
UPDATE checkout.locks SET expires_at = created_at + interval '1 millisecond' WHERE lock_id = :ex;
SELECT state, error_code FROM checkout_advance(:ex, 'ma');
COMMIT;
SELECT state, phase FROM checkout_advance((checkout_start('ma-live', 'ma', pg_temp.line('MA-A', 4, 101))).lock_id, 'ma', until => 'price_lock');

SELECT started - :m0_started AS started, completed - :m0_completed AS completed, failed - :m0_failed AS failed,
       expired - :m0_expired AS expired, cancelled - :m0_cancelled AS cancelled, active - :m0_active AS active,
       price_drift_warnings - :m0_price_drift_warnings AS drift_warnings,
       active_locks - :m0_active_locks AS active_locks
FROM checkout_monitor(1);
SELECT k, (m.failures_by_code ->> k)::int - COALESCE((:'m0_failures_by_code'::jsonb ->> k)::int, 0) AS more
FROM checkout_monitor(1) m, unnest(ARRAY['KC011', 'KC012', 'KC015']) k;
SELECT k, (m.failures_by_phase ->> k)::int - COALESCE((:'m0_failures_by_phase'::jsonb ->> k)::int, 0) AS more
FROM checkout_monitor(1) m, unnest(ARRAY['inventory_reservation', 'price_lock', 'order_creation']) k;
SELECT success_rate BETWEEN 0 AND 1 AS rate_is_a_fraction,
       duration_p50 >= interval '0' AND duration_p50 <= duration_p95 AND duration_p95 <= duration_max AS durations_ordered,
       duration_max >= interval '50 milliseconds' AS two_call_checkout_counted,
       units_reserved = (SELECT sum(reserved) FROM checkout.inventory) AS units_from_ledger,
       oldest_active_age >= interval '0' AS age
FROM checkout_monitor(1);

-- the exporter's cumulative counters moved the same way
SELECT locks_total - :s0_locks_total AS locks, locks_completed - :s0_locks_completed AS completed,
       locks_failed - :s0_locks_failed AS failed, locks_expired - :s0_locks_expired AS expired,
       locks_cancelled - :s0_locks_cancelled AS cancelled, locks_active - :s0_locks_active AS active,
       skus - :s0_skus AS skus, units_reserved - :s0_units_reserved AS units_reserved,
       reservations - :s0_reservations AS reservations,
       price_drift_warnings - :s0_price_drift_warnings AS drift_warnings,
       compensations_open - :s0_compensations_open AS compensations_open
FROM checkout.stats;
SELECT state FROM checkout_cancel((SELECT lock_id FROM checkout.locks WHERE cart_id = 'ma-live' AND state = 'active'), 'ma');
RESET checkout.log_events;
