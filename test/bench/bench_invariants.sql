-- make bench: the ledger after a multi-client run, for the extension (schema
-- checkout) and the floor alike.  One line per side and check with the number
-- of skus or locks that break it, then "TOTAL_VIOLATIONS n".
-- psql variable: max_active (unfinished checkouts allowed: a run stopped by
-- time leaves at most one per client; the worker expires them in time).
\pset footer off
\pset tuples_only on
\pset format unaligned
\pset fieldsep ' '
CREATE TEMP VIEW ledger AS
WITH held AS (SELECT 'api' AS side, sku, sum(quantity) AS q FROM checkout.reservations GROUP BY sku
              UNION ALL
              SELECT 'floor', sku, sum(quantity) FROM floor.reservations GROUP BY sku),
     sold AS (SELECT 'api' AS side, ll.sku, sum(ll.quantity) AS q
                FROM checkout.lock_lines ll JOIN checkout.locks l USING (lock_id)
               WHERE l.state = 'completed' GROUP BY ll.sku
              UNION ALL
              SELECT 'floor', ll.sku, sum(ll.quantity)
                FROM floor.lock_lines ll JOIN floor.locks l USING (lock_id)
               WHERE l.state = 'completed' GROUP BY ll.sku),
     inv AS (SELECT 'api' AS side, sku, on_hand, reserved FROM checkout.stock   -- a striped sku's too
             UNION ALL
             SELECT 'floor', sku, on_hand, reserved FROM floor.inventory)
SELECT inv.side, inv.sku, inv.on_hand, inv.reserved, coalesce(h.q, 0) AS held,
       coalesce(s.q, 0) AS sold, init.stock AS initial
  FROM inv JOIN bench.initial init USING (sku)
  LEFT JOIN held h ON h.side = inv.side AND h.sku = inv.sku
  LEFT JOIN sold s ON s.side = inv.side AND s.sku = inv.sku;

CREATE TEMP VIEW lock_states AS
SELECT 'api' AS side, state::text, lock_id FROM checkout.locks
UNION ALL
SELECT 'floor', state::text, lock_id FROM floor.locks;

CREATE TEMP VIEW invariant_check AS
SELECT side, 'reserved=sum(reservations)' AS invariant,
       count(*) FILTER (WHERE reserved <> held) AS violations
  FROM ledger GROUP BY side
UNION ALL
SELECT side, 'on_hand+sold=initial', count(*) FILTER (WHERE on_hand + sold <> initial)
  FROM ledger GROUP BY side
UNION ALL
SELECT side, 'no_failed_checkout', count(*) FILTER (WHERE state IN ('failed', 'cancelled'))
  FROM lock_states GROUP BY side
UNION ALL
-- an unfinished checkout is active, or expired once its deadline passed
SELECT side, 'unfinished<=allowed',
       greatest(count(*) FILTER (WHERE state IN ('active', 'expired')) - :max_active, 0)
  FROM lock_states GROUP BY side
UNION ALL
SELECT 'api', 'no_reservation_of_finished_lock', count(*)
  FROM checkout.reservations r JOIN checkout.locks l USING (lock_id) WHERE l.state <> 'active'
UNION ALL
SELECT 'floor', 'no_reservation_of_finished_lock', count(*)
  FROM floor.reservations r JOIN floor.locks l USING (lock_id) WHERE l.state <> 'active'
UNION ALL
SELECT 'api', 'checkout_verify()_empty', (SELECT count(*) FROM checkout_verify());

SELECT side || ':' || invariant || '=' || violations FROM invariant_check ORDER BY side, invariant;
SELECT 'TOTAL_VIOLATIONS ' || sum(violations) FROM invariant_check;
