-- pgbench, the DML floor: the row changes a correct checkout makes, as raw
-- parameterised statements into schema floor, in the same four round trips
-- (one transaction each) as api_checkout.sql, with no function, check or log:
--   start:     the lock row and its line
--   price_lock: reserved += q on the ledger where stock allows, the reservation row, the price
--              snapshot, the phase and total on the lock row
--   authorise: the phase and authorisation on the lock row
--   capture:   the order row; on_hand -= q, reserved -= q; the reservation
--              deleted; phase, state, finish time, order and capture on the lock row
\if :step = 0
\set sku random(:sku_lo, :sku_hi)
\set q random(1, 3)
\set r random(1, 1000000000)
WITH l AS (INSERT INTO floor.locks (cart_id, session_id, expires_at)
           VALUES ('c-' || :client_id || '-' || :r, 'bench', now() + interval '15 minutes')
           RETURNING lock_id),
     line AS (INSERT INTO floor.lock_lines (lock_id, line_no, line_id, sku, quantity, cart_price)
              SELECT lock_id, 1, '1', 'S-' || :sku, :q, 100 FROM l)
SELECT lock_id AS lid FROM l \gset
\elif :step = 1
WITH inv AS (UPDATE floor.inventory SET reserved = reserved + :q
             WHERE sku = 'S-' || :sku AND on_hand - reserved >= :q RETURNING sku, unit_price),
     held AS (INSERT INTO floor.reservations (lock_id, sku, quantity) SELECT :lid, sku, :q FROM inv),
     snap AS (INSERT INTO floor.price_snapshots (lock_id, line_id, sku, quantity, cart_price, locked_price, drift_percent)
              SELECT :lid, '1', sku, :q, 100, unit_price, abs(unit_price - 100) * 100.0 / 100 FROM inv)
UPDATE floor.locks SET phase = 'price_lock', total = (SELECT unit_price * :q FROM inv)
WHERE lock_id = :lid RETURNING total \gset
\elif :step = 2
UPDATE floor.locks SET phase = 'payment_authorization', auth_reference = 'auth-' || :lid, auth_amount = :total
WHERE lock_id = :lid;
\else
WITH o AS (INSERT INTO floor.orders (order_ref, lock_id, cart_id, total, source)
           VALUES ('CO-' || :lid, :lid, 'c-' || :client_id || '-' || :r, :total, 'checkout')),
     gone AS (DELETE FROM floor.reservations WHERE lock_id = :lid RETURNING sku, quantity),
     sold AS (UPDATE floor.inventory i SET on_hand = i.on_hand - g.quantity, reserved = i.reserved - g.quantity
              FROM gone g WHERE i.sku = g.sku)
UPDATE floor.locks SET phase = 'stock_commit', state = 'completed', finished_at = now(),
       order_ref = 'CO-' || :lid, capture_reference = 'cap-' || :lid, capture_amount = :total
WHERE lock_id = :lid;
\endif
\set step (:step + 1) % 4
