-- The ledger invariants after a multi-client run.  Prints one row per
-- invariant with the number of skus (or locks) that break it, then
-- "TOTAL_VIOLATIONS n".
\pset footer off
CREATE TEMP VIEW invariant_check AS
WITH inv AS (SELECT * FROM checkout.inventory),
     held AS (SELECT sku, sum(quantity) AS q FROM checkout.reservations GROUP BY sku),
     sold AS (SELECT ll.sku, sum(ll.quantity) AS q
                FROM checkout.lock_lines ll JOIN checkout.locks l USING (lock_id)
               WHERE l.state = 'completed' GROUP BY ll.sku),
     restocked AS (SELECT sku, sum(quantity) AS q FROM harness.restocks GROUP BY sku),
     per_sku AS (
        SELECT i.sku, i.on_hand, i.reserved, coalesce(h.q, 0) AS held, coalesce(s.q, 0) AS sold,
               coalesce(r.q, 0) AS restocked, init.stock AS initial
          FROM harness.initial init
          LEFT JOIN inv i USING (sku) LEFT JOIN held h USING (sku)
          LEFT JOIN sold s USING (sku) LEFT JOIN restocked r USING (sku))
SELECT 1 AS n, 'reserved = sum(reservations.quantity)' AS invariant,
       count(*) FILTER (WHERE reserved IS DISTINCT FROM held) AS violations,
       string_agg(format('%s: reserved %s, held %s', sku, reserved, held), '; ')
         FILTER (WHERE reserved IS DISTINCT FROM held) AS examples
  FROM per_sku
UNION ALL
SELECT 2, '0 <= reserved <= on_hand',
       count(*) FILTER (WHERE NOT (0 <= reserved AND reserved <= on_hand) OR reserved IS NULL),
       string_agg(format('%s: reserved %s, on_hand %s', sku, reserved, on_hand), '; ')
         FILTER (WHERE NOT (0 <= reserved AND reserved <= on_hand) OR reserved IS NULL)
  FROM per_sku
UNION ALL
SELECT 3, 'on_hand + units sold = initial stock + restocked',
       count(*) FILTER (WHERE on_hand + sold IS DISTINCT FROM initial + restocked),
       string_agg(format('%s: on_hand %s + sold %s <> initial %s + restocked %s',
                         sku, on_hand, sold, initial, restocked), '; ')
         FILTER (WHERE on_hand + sold IS DISTINCT FROM initial + restocked)
  FROM per_sku
UNION ALL
SELECT 4, 'no reservation held by a finished lock',
       count(*), string_agg(DISTINCT l.state::text, ', ')
  FROM checkout.reservations r JOIN checkout.locks l USING (lock_id)
 WHERE l.state <> 'active'
UNION ALL
SELECT 5, 'no active lock past its deadline (after the final sweep)',
       count(*), min(lock_id)::text
  FROM checkout.locks WHERE state = 'active' AND expires_at < now() - interval '2 seconds';

SELECT n AS "#", invariant, violations, left(examples, 200) AS examples FROM invariant_check ORDER BY n;
SELECT sum(violations) AS total_violations FROM invariant_check \gset
\echo TOTAL_VIOLATIONS :total_violations
