-- checkout_monitor on a known history, figure by figure, and the plan it runs
-- (index scans, so it stays fast on a history of a million locks).
-- Everything happens in one transaction that is rolled back: the history is
-- written by hand, and now() is the same for every statement, so ages and
-- durations are exact.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
BEGIN;

-- an empty window: zeros, no rate, no durations
SELECT * FROM checkout_monitor(24);

INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('MH-A', 100, 1000);
CREATE TEMP TABLE history (n int, cart_id text, state checkout.lock_state, phase checkout.phase,
                           created interval, took interval, ttl interval,
                           failed_phase checkout.phase, error_code text, holds bigint) ON COMMIT DROP;
-- created: how long ago; took: created_at .. finished_at; holds: units of MH-A still reserved
INSERT INTO history VALUES
  -- the last hour
  ( 1, 'mh-1',  'completed', 'stock_commit',          '50 min',  '2 min', '15 min', NULL, NULL, NULL),
  ( 2, 'mh-2',  'completed', 'stock_commit',          '40 min',  '4 min', '15 min', NULL, NULL, NULL),
  ( 3, 'mh-3',  'failed',    'cart_validation',       '30 min',  '0',     '15 min', 'inventory_reservation', 'KC011', NULL),
  ( 4, 'mh-4',  'active',    'inventory_reservation', '10 min',  NULL,    '15 min', NULL, NULL, 2),
  -- 1 to 24 hours ago
  ( 5, 'mh-5',  'completed', 'stock_commit',          '3 hours', '6 min', '15 min', NULL, NULL, NULL),
  ( 6, 'mh-6',  'completed', 'stock_commit',          '5 hours', '10 min','15 min', NULL, NULL, NULL),
  ( 7, 'mh-7',  'failed',    'inventory_reservation', '6 hours', '1 min', '15 min', 'price_lock', 'KC012', NULL),
  ( 8, 'mh-8',  'failed',    'order_creation',        '7 hours', '3 min', '15 min', 'payment_capture', 'KC014', NULL),
  ( 9, 'mh-9',  'expired',   'payment_authorization', '20 hours','15 min','15 min', 'order_creation', 'KC015', NULL),
  (10, 'mh-10', 'cancelled', 'price_lock',            '23 hours','5 min', '15 min', NULL, NULL, NULL),
  (11, 'mh-11', 'active',    'inventory_reservation', '2 hours', NULL,    '1 hour', NULL, NULL, 3),
  -- 24 to 48 hours ago
  (12, 'mh-12', 'completed', 'stock_commit',          '30 hours','1 hour','1 hour', NULL, NULL, NULL),
  (13, 'mh-13', 'failed',    'cart_validation',       '47 hours','0',     '15 min', 'inventory_reservation', 'KC011', NULL);
INSERT INTO checkout.locks (cart_id, session_id, state, phase, created_at, expires_at, finished_at,
                            capture_reference, failed_phase, error_code)
SELECT cart_id, 'mh', state, phase, now() - created, now() - created + ttl, now() - created + took,
       CASE WHEN state = 'completed' THEN 'cap-' || n END, failed_phase, error_code
FROM history ORDER BY n;
INSERT INTO checkout.reservations (lock_id, sku, quantity)
SELECT l.lock_id, 'MH-A', h.holds FROM history h JOIN checkout.locks l USING (cart_id) WHERE h.holds IS NOT NULL;
UPDATE checkout.inventory SET reserved = 5 WHERE sku = 'MH-A';
-- price-drift warnings: one 90 minutes ago, one 30 hours ago; a snapshot without drift
INSERT INTO checkout.price_snapshots (lock_id, line_id, sku, quantity, cart_price, locked_price, drift_percent, taken_at)
SELECT l.lock_id, '1', 'MH-A', 1, s.cart_price, 1000, s.drift, now() - s.ago
FROM (VALUES ('mh-11', 1005, 0.4975, interval '90 min'), ('mh-12', 1004, 0.3984, interval '30 hours'),
             ('mh-5', 1000, 0, interval '3 hours')) s(cart_id, cart_price, drift, ago)
JOIN checkout.locks l USING (cart_id);

-- the last 24 hours: 11 started (mh-1 .. mh-11); 4 of the 9 finished completed;
-- completed in 2, 4, 6 and 10 minutes: p50 5 min, p95 9 min 24 s (interpolated)
\x on
SELECT * FROM checkout_monitor(24);
-- the last hour: mh-1 .. mh-4; the active figures are the same (they are "now")
SELECT * FROM checkout_monitor(1);
-- two days: all 13; the default is 24 hours
SELECT started, completed, failed, success_rate, failures_by_code, duration_max, price_drift_warnings
FROM checkout_monitor(48);
\x off
SELECT started FROM checkout_monitor();
SELECT started, completed FROM checkout_monitor(2147483647);

-- The scans in the plan of checkout_monitor's query (taken from the function's
-- own source), with sequential and bitmap scans disabled so that the index
-- choice shows on these few rows: the window is a range scan of
-- locks_created_at, drift warnings come from the partial index
-- price_snapshots_taken_at, active locks from one of the partial indexes on
-- state = 'active' (locks_due or locks_active_by_cart: either will do, so the
-- name is masked).  The aggregation nodes are left out: their strategy
-- depends on statistics.  test/bench/monitor_million.sh times the real thing.
CREATE FUNCTION pg_temp.monitor_scans(hours int) RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE
    q text;
    line text;
BEGIN
    SELECT substring(p.prosrc FROM 'RETURN QUERY(.*);\s*END') INTO q
    FROM pg_proc p WHERE p.oid = 'checkout_monitor(integer)'::regprocedure;
    q := regexp_replace(q, '\msince\M', format('(now() - interval %L)', hours || ' hours'), 'g');
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        CONTINUE WHEN line !~ '(Scan|Cond)';
        line := regexp_replace(line, '^\s*(->)?\s*', '');
        line := regexp_replace(line, 'using (locks_due|locks_active_cart) ', 'using <active locks index> ');
        line := regexp_replace(line, ' on (\w+) \w+$', ' on \1');
        RETURN NEXT line;
    END LOOP;
END
$f$;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT * FROM pg_temp.monitor_scans(24);
ROLLBACK;

-- hours must be at least 1
SELECT * FROM checkout_monitor(0);
SELECT * FROM checkout_monitor(-5);
SELECT * FROM checkout_monitor(NULL);
RESET checkout.log_events;
