-- The ledger invariants after a multi-client run.  Prints one row per
-- invariant with the number of skus (or locks, stripes) that break it, then
-- "TOTAL_VIOLATIONS n".  A sku's stock is checkout.stock's: its inventory
-- row, or the sums of its stripes when it is striped (whose inventory row
-- then holds the totals as of the last fold: the worker folds every
-- checkout.rebalance_interval, so once the run is over the two must agree).
\pset footer off
CREATE TEMP VIEW invariant_check AS
WITH inv AS (SELECT * FROM checkout.stock),
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
  FROM checkout.locks WHERE state = 'active' AND expires_at < now() - interval '2 seconds'
UNION ALL
SELECT 6, 'each stripe: 0 <= reserved <= on_hand',
       count(*), string_agg(format('%s stripe %s: reserved %s, on_hand %s', sku, stripe, reserved, on_hand), '; ')
  FROM checkout.inventory_stripes WHERE NOT (0 <= reserved AND reserved <= on_hand)
UNION ALL
SELECT 7, 'checkout_verify() reports nothing (each stripe''s reserved = its reservations)',
       count(*), string_agg(format('%s %s: %s', invariant, subject, detail), '; ')
  FROM checkout_verify()
UNION ALL
SELECT 8, 'a striped sku''s inventory row = its stripes'' totals (folded by the worker)',
       count(*), string_agg(format('%s: row %s/%s, stripes %s/%s', i.sku, i.on_hand, i.reserved, s.on_hand, s.reserved), '; ')
  FROM checkout.inventory i JOIN checkout.stock s USING (sku)
 WHERE s.stripes > 1 AND (i.on_hand, i.reserved) IS DISTINCT FROM (s.on_hand, s.reserved)
UNION ALL
SELECT 9, 'a refusal (KC011) says less was available than wanted',
       count(*), min(lock_id)::text || ': ' || min(error_message)
  FROM (SELECT l.lock_id, l.error_message,
               regexp_match(l.error_message, 'wanted ([0-9]+), available ([0-9]+)$') AS m
          FROM checkout.locks l WHERE l.error_code = 'KC011') r
 WHERE m IS NULL OR m[1]::bigint <= m[2]::bigint;

SELECT n AS "#", invariant, violations, left(examples, 200) AS examples FROM invariant_check ORDER BY n;
SELECT sum(violations) AS total_violations FROM invariant_check \gset
\echo TOTAL_VIOLATIONS :total_violations
