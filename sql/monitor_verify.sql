-- checkout_monitor on a known history (as differences, since other tests
-- share the database), checkout_verify with each invariant broken by hand,
-- and the events table: every event's JSON names lock_id and cart_id.
SET client_min_messages = warning;
SET checkout.log_destination = 'table';
SET checkout.log_events = 'all';
SELECT * FROM checkout_monitor(1) \gset m0_
SELECT count(*) AS v0 FROM checkout_verify() \gset
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('MV-A', 10, 100), ('MV-B', 1, 50);

-- history: 2 completed, 1 failed on stock, 1 cancelled, 1 active with a drift warning
SELECT checkout_advance(s.lock_id, 'mv', '{"reference":"c","amount":200}', until => 'stock_commit')
  IS NOT NULL FROM (SELECT checkout_advance(s.lock_id, 'mv', '{"reference":"a","amount":200}', until => 'order_creation') AS x, s.lock_id
                    FROM generate_series(1, 2) g, LATERAL checkout_start('mv-ok-' || g, 'mv', '[{"line_id":"1","sku":"MV-A","quantity":2,"unit_price":100}]') s) s;
SELECT state, error_code FROM checkout_advance((SELECT lock_id FROM checkout_start('mv-short', 'mv', '[{"line_id":"1","sku":"MV-B","quantity":5,"unit_price":50}]')), 'mv', until => 'price_lock');
SELECT state FROM checkout_cancel((SELECT lock_id FROM checkout_start('mv-cancel', 'mv', '[{"line_id":"1","sku":"MV-A","quantity":1,"unit_price":100}]')), 'mv');
SELECT state, phase FROM checkout_advance((SELECT lock_id FROM checkout_start('mv-live', 'mv', '[{"line_id":"1","sku":"MV-A","quantity":1,"unit_price":101}]')), 'mv', until => 'price_lock');

SELECT started - :m0_started AS started, completed - :m0_completed AS completed, failed - :m0_failed AS failed,
       cancelled - :m0_cancelled AS cancelled, active - :m0_active AS active,
       price_drift_warnings - :m0_price_drift_warnings AS drift_warnings,
       failures_by_code ? 'KC011' AS kc011_counted, failures_by_phase ? 'inventory_reservation' AS phase_counted,
       duration_p50 IS NOT NULL AND duration_p95 >= duration_p50 AND duration_max >= duration_p95 AS durations,
       active_locks >= 1 AS has_active, oldest_active_age >= interval '0' AS age, units_reserved >= 1 AS reserved
FROM checkout_monitor(1);
SELECT count(*) - :v0 AS broken FROM checkout_verify();

-- the events table: one row per event, JSON naming lock_id and cart_id
SELECT e.event, e.detail ? 'lock_id' AND e.detail ? 'cart_id' AS names_lock_and_cart,
       array(SELECT k FROM jsonb_object_keys(e.detail) k WHERE k NOT IN ('lock_id', 'cart_id') ORDER BY 1) AS keys
FROM checkout.events e WHERE e.cart_id = 'mv-ok-1' ORDER BY e.event_id;
SELECT e.event, e.detail->>'code' AS code, e.detail->>'phase' AS phase
FROM checkout.events e WHERE e.cart_id = 'mv-short' AND e.event = 'failed';
SELECT e.detail->>'sku' AS sku, e.detail->>'cart_price' AS cart_price, e.detail->>'current_price' AS current_price,
       e.detail->>'drift_percent' AS drift
FROM checkout.events e WHERE e.cart_id = 'mv-live' AND e.event = 'price drift';

-- break each invariant by hand, see it reported, mend it
UPDATE checkout.inventory SET reserved = reserved + 1 WHERE sku = 'MV-A';
UPDATE checkout.locks SET created_at = now() - interval '30 minutes', expires_at = now() - interval '10 minutes' WHERE cart_id = 'mv-live';
UPDATE checkout.locks SET capture_reference = NULL WHERE cart_id = 'mv-ok-1';
INSERT INTO checkout.orders (order_ref, lock_id, cart_id, total, source)
  SELECT 'MV-ORPHAN', lock_id, cart_id, 0, 'application' FROM checkout.locks WHERE cart_id = 'mv-short';
SELECT invariant FROM checkout_verify() WHERE subject IN ('MV-A', 'MV-ORPHAN')
   OR subject IN (SELECT lock_id::text FROM checkout.locks WHERE cart_id LIKE 'mv-%') ORDER BY invariant;
UPDATE checkout.inventory SET reserved = reserved - 1 WHERE sku = 'MV-A';
UPDATE checkout.locks SET capture_reference = 'c' WHERE cart_id = 'mv-ok-1';
UPDATE checkout.orders SET status = 'cancelled' WHERE order_ref = 'MV-ORPHAN';
SELECT checkout_cleanup_expired() >= 1 AS swept;
SELECT count(*) - :v0 AS broken FROM checkout_verify();

-- admin views
SELECT cart_id, overdue, reservations FROM checkout.active_locks WHERE cart_id LIKE 'mv-%';
SELECT count(*) AS stuck FROM checkout.stuck_reservations WHERE cart_id LIKE 'mv-%';
SELECT locks_total >= 5 AND locks_completed >= 2 AS counters FROM checkout.stats;
