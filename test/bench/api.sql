-- pgbench: one full checkout through the API, four calls as an application
-- makes them: start; advance until price_lock (validate, reserve, lock prices);
-- authorise; capture with until => stock_commit (order, capture, sell).
-- Cart ids are unique per client (the client id is part of them), so KC001
-- cannot happen; stock is large, so no phase fails.  Variables: nskus (-D).
\set sku random(1, :nskus)
\set q random(1, 3)
\set r random(1, 1000000000)
\set amount :q * 100
SELECT lock_id AS lid FROM checkout_start('c-' || :client_id || '-' || :r, 's-' || :client_id,
  ('[{"line_id":"1","sku":"S-' || :sku || '","quantity":' || :q || ',"unit_price":100}]')::jsonb) \gset
SELECT state FROM checkout_advance(:lid, 's-' || :client_id, until => 'price_lock');
SELECT state FROM checkout_advance(:lid, 's-' || :client_id,
  ('{"reference":"auth-' || :lid || '","amount":' || :amount || '}')::jsonb);
SELECT state FROM checkout_advance(:lid, 's-' || :client_id,
  ('{"reference":"cap-' || :lid || '","amount":' || :amount || '}')::jsonb, until => 'stock_commit');
