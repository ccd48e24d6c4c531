-- checkout_monitor and checkout.stats follow a history made through the API
-- on an empty slate: started, every outcome, failures by code and phase,
-- durations, drift warnings, active locks, units reserved, open compensations.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('MA-A', 20, 100), ('MA-B', 1, 50);

-- two completed (one of them in two calls), two failed (stock, drift), one
-- cancelled, one expired after its authorisation, one active with a drift warning
SELECT state FROM checkout_advance((checkout_advance((checkout_start('ma-ok-1', 'ma', checkout_test.one_line('MA-A', 2, 100))).lock_id, 'ma',
       checkout_test.pay('auth-1', 200), until => 'order_creation')).lock_id, 'ma', checkout_test.pay('cap-1', 200), until => 'stock_commit');
SELECT lock_id AS ok2 FROM checkout_advance((checkout_start('ma-ok-2', 'ma', checkout_test.one_line('MA-A', 1, 100))).lock_id, 'ma',
       checkout_test.pay('auth-2', 100), until => 'order_creation') \gset
SELECT pg_sleep(0.05);
SELECT state FROM checkout_advance(:ok2, 'ma', checkout_test.pay('cap-2', 100), until => 'stock_commit');
SELECT state, error_code FROM checkout_advance((checkout_start('ma-short', 'ma', checkout_test.one_line('MA-B', 5, 50))).lock_id, 'ma', until => 'price_lock');
SELECT state, error_code FROM checkout_advance((checkout_start('ma-drift', 'ma', checkout_test.one_line('MA-A', 1, 90))).lock_id, 'ma', until => 'price_lock');
SELECT state FROM checkout_cancel((checkout_start('ma-cancel', 'ma', checkout_test.one_line('MA-A', 1, 100))).lock_id, 'ma');
SELECT lock_id AS ex FROM checkout_advance((checkout_start('ma-expire', 'ma', checkout_test.one_line('MA-A', 3, 100))).lock_id, 'ma',
       checkout_test.pay('auth-6', 300), until => 'payment_authorization') \gset
SELECT pg_sleep(0.01);	-- its deadline, 1 ms after its start, must be past when the next transaction starts
BEGIN;
UPDATE checkout.locks SET expires_at = created_at + interval '1 millisecond' WHERE lock_id = :ex;
SELECT state, error_code FROM checkout_advance(:ex, 'ma');
COMMIT;
SELECT state, phase FROM checkout_advance((checkout_start('ma-live', 'ma', checkout_test.one_line('MA-A', 4, 101))).lock_id, 'ma', until => 'price_lock');

SELECT started, completed, failed, expired, cancelled, active, price_drift_warnings AS drift_warnings, active_locks
FROM checkout_monitor(1);
SELECT failures_by_code, failures_by_phase FROM checkout_monitor(1);
SELECT success_rate BETWEEN 0 AND 1 AS rate_is_a_fraction,
       duration_p50 >= interval '0' AND duration_p50 <= duration_p95 AND duration_p95 <= duration_max AS durations_ordered,
       duration_max >= interval '50 milliseconds' AS two_call_checkout_counted,
       units_reserved = (SELECT sum(reserved) FROM checkout.inventory) AS units_from_ledger,
       oldest_active_age >= interval '0' AS age
FROM checkout_monitor(1);

-- the exporter's cumulative counters moved the same way
SELECT locks_total AS locks, locks_completed AS completed, locks_failed AS failed, locks_expired AS expired,
       locks_cancelled AS cancelled, locks_active AS active, skus, units_reserved, reservations,
       price_drift_warnings AS drift_warnings, compensations_open
FROM checkout.stats;
SELECT state FROM checkout_cancel((SELECT lock_id FROM checkout.locks WHERE cart_id = 'ma-live' AND state = 'active'), 'ma');
RESET checkout.log_events;
