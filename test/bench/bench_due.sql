-- bench-long: :n abandoned checkouts of the hot sku S-0, one unit each, at
-- price_lock and past their deadline, loaded set-based (as a superuser) as the
-- API would have left them: lock row, line, reservation, price snapshot, and
-- the ledger's reserved raised to match.  psql variable: n.
SET client_min_messages = warning;
SELECT coalesce(max(lock_id), 0) AS base FROM checkout.locks \gset
INSERT INTO checkout.locks
       (lock_id, cart_id, session_id, state, phase, gateway, created_at, expires_at, total) OVERRIDING SYSTEM VALUE
SELECT :base + g, 'due-' || g, 'due', 'active', 'price_lock', 'stripe',
       now() - interval '20 minutes', now() - interval '5 minutes', 100
FROM generate_series(1, :n) g;
SELECT setval(pg_get_serial_sequence('checkout.locks', 'lock_id'), :base + :n) \gset
INSERT INTO checkout.lock_lines (lock_id, line_no, line_id, sku, quantity, cart_price)
SELECT :base + g, 1, '1', 'S-0', 1, 100 FROM generate_series(1, :n) g;
INSERT INTO checkout.reservations (lock_id, sku, quantity, reserved_at)
SELECT :base + g, 'S-0', 1, now() - interval '20 minutes' FROM generate_series(1, :n) g;
INSERT INTO checkout.price_snapshots (lock_id, line_id, sku, quantity, cart_price, locked_price, drift_percent, taken_at)
SELECT :base + g, '1', 'S-0', 1, 100, 100, 0, now() - interval '20 minutes' FROM generate_series(1, :n) g;
UPDATE checkout.inventory SET reserved = reserved + :n WHERE sku = 'S-0';
ANALYZE checkout.locks, checkout.reservations, checkout.inventory;
