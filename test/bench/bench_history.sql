-- bench-long: :locks finished checkouts of the past :days days, loaded with
-- set-based INSERTs (as a superuser) into schema :schema (checkout or floor,
-- which share the column names), as the API would have left them: completed
-- at stock_commit with lock row, one line, price snapshot, order, authorised
-- and captured payment; the ledger's on_hand lowered by what they sold, so the
-- invariants hold.  Lock ids continue after the ones there are.
-- psql variables: schema, locks, days, nskus.
SET client_min_messages = warning;
SELECT coalesce(max(lock_id), 0) AS base FROM :"schema".locks \gset
CREATE TEMP TABLE history AS
SELECT :base + g AS lock_id, 'h-' || g AS cart_id, 'S-' || (1 + g % :nskus) AS sku, 1 + g % 3 AS q,
       now() - interval '1 hour' - (:days * interval '1 day') * (:locks - g) / :locks AS created
FROM generate_series(1, :locks) g;
\echo :schema: lock rows
INSERT INTO :"schema".locks
       (lock_id, cart_id, session_id, state, phase, gateway, created_at, expires_at, finished_at, total,
        order_ref, auth_reference, auth_amount, capture_reference, capture_amount) OVERRIDING SYSTEM VALUE
SELECT lock_id, cart_id, 'hist-' || lock_id % 50000, 'completed', 'stock_commit', 'stripe',
       created, created + interval '15 minutes', created + interval '2 minutes', 100 * q,
       'CO-' || lock_id, 'auth-' || lock_id, 100 * q, 'cap-' || lock_id, 100 * q
FROM history;
SELECT setval(pg_get_serial_sequence(:'schema' || '.locks', 'lock_id'), :base + :locks) \gset
\echo :schema: lines, price snapshots, orders
INSERT INTO :"schema".lock_lines (lock_id, line_no, line_id, sku, quantity, cart_price)
SELECT lock_id, 1, '1', sku, q, 100 FROM history;
INSERT INTO :"schema".price_snapshots (lock_id, line_id, sku, quantity, cart_price, locked_price, drift_percent, taken_at)
SELECT lock_id, '1', sku, q, 100, 100, 0, created + interval '30 seconds' FROM history;
INSERT INTO :"schema".orders (order_ref, lock_id, cart_id, total, source, created_at)
SELECT 'CO-' || lock_id, lock_id, cart_id, 100 * q, 'checkout', created + interval '1 minute' FROM history;
\echo :schema: ledger
UPDATE :"schema".inventory i SET on_hand = i.on_hand - s.q
FROM (SELECT sku, sum(q) AS q FROM history GROUP BY sku) s WHERE i.sku = s.sku;
