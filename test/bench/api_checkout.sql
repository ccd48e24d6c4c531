-- pgbench, the extension: a whole checkout as an application makes it, one
-- API call per pgbench transaction (so --log times each call): start; advance
-- until price_lock; authorise the locked total; capture with until =>
-- stock_commit (order, capture, sell).  The variable step (-D step=0) walks
-- each client through the four calls in turn; \gset carries lock_id and total
-- from call to call.  The sku is random(:sku_lo, :sku_hi): S-1..S-n spread,
-- S-0 hot.  Stock is ample, so every checkout completes (checked afterwards).
\if :step = 0
\set sku random(:sku_lo, :sku_hi)
\set q random(1, 3)
\set r random(1, 1000000000)
SELECT lock_id AS lid FROM checkout_start('c-' || :client_id || '-' || :r, 'bench',
  ('[{"line_id":"1","sku":"S-' || :sku || '","quantity":' || :q || ',"unit_price":100}]')::jsonb) \gset
\elif :step = 1
SELECT total FROM checkout_advance(:lid, 'bench', until => 'price_lock') \gset
\elif :step = 2
SELECT state FROM checkout_advance(:lid, 'bench',
  ('{"reference":"auth-' || :lid || '","amount":' || :total || '}')::jsonb);
\else
SELECT state FROM checkout_advance(:lid, 'bench',
  ('{"reference":"cap-' || :lid || '","amount":' || :total || '}')::jsonb, until => 'stock_commit');
\endif
\set step (:step + 1) % 4
