-- stress: reserve (and half the time authorise), then cancel: rollback of the
-- reservation and a void_required compensation.
\set a random(1, :nskus)
\set b random(1, :nskus)
\set qa random(1, 2)
\set qb random(1, 2)
\set r random(1, 1000000000)
\set amount (:qa + :qb) * 100
\set doauth random(0, 1)
SELECT lock_id AS lid FROM checkout_start('x-' || :client_id || '-' || :r, 's-' || :client_id,
  ('[{"line_id":"1","sku":"S-' || :a || '","quantity":' || :qa || ',"unit_price":100},{"line_id":"2","sku":"S-' || :b || '","quantity":' || :qb || ',"unit_price":100}]')::jsonb) \gset
SELECT (harness.advance(:lid, 's-' || :client_id, '{}', 'price_lock') = 'active')::int AS live \gset
\if :live
\if :doauth
SELECT harness.advance(:lid, 's-' || :client_id, ('{"reference":"a-' || :lid || '","amount":' || :amount || '}')::jsonb, NULL);
\endif
\endif
SELECT harness.cancel(:lid, 's-' || :client_id);
