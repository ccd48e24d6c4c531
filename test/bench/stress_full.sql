-- stress: a whole checkout of a two-line cart over the few skus; a shortfall
-- fails it (returned), then the rest is skipped.
\set a random(1, :nskus)
\set b random(1, :nskus)
\set qa random(1, 2)
\set qb random(1, 2)
\set r random(1, 1000000000)
\set amount (:qa + :qb) * 100
SELECT lock_id AS lid FROM checkout_start('f-' || :client_id || '-' || :r, 's-' || :client_id,
  ('[{"line_id":"1","sku":"S-' || :a || '","quantity":' || :qa || ',"unit_price":100},{"line_id":"2","sku":"S-' || :b || '","quantity":' || :qb || ',"unit_price":100}]')::jsonb) \gset
SELECT (harness.advance(:lid, 's-' || :client_id, '{}', 'price_lock') = 'active')::int AS live \gset
\if :live
SELECT (harness.advance(:lid, 's-' || :client_id, ('{"reference":"a-' || :lid || '","amount":' || :amount || '}')::jsonb, NULL) = 'active')::int AS live \gset
\endif
\if :live
SELECT harness.advance(:lid, 's-' || :client_id, ('{"reference":"c-' || :lid || '","amount":' || :amount || '}')::jsonb, 'stock_commit');
\endif
