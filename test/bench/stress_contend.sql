-- stress: ten carts shared by all clients, as if several devices checked out
-- the same cart: KC001 for all but one; the winner completes or cancels.
\set a random(1, :nskus)
\set b random(1, :nskus)
\set qa random(1, 2)
\set qb random(1, 2)
\set r random(1, 1000000000)
\set amount (:qa + :qb) * 100
\set cart random(1, 10)
\set finish random(0, 1)
SELECT harness.start('shared-' || :cart, 's-' || :client_id, ('[{"line_id":"1","sku":"S-' || :a || '","quantity":' || :qa || ',"unit_price":100},{"line_id":"2","sku":"S-' || :b || '","quantity":' || :qb || ',"unit_price":100}]')::jsonb, '5 seconds') AS lid \gset
\if :lid > 0
SELECT (harness.advance(:lid, 's-' || :client_id, '{}', 'price_lock') = 'active')::int AS live \gset
\if :live
\if :finish
SELECT (harness.advance(:lid, 's-' || :client_id, ('{"reference":"a-' || :lid || '","amount":' || :amount || '}')::jsonb, NULL) = 'active')::int AS live \gset
\endif
\endif
\if :live
\if :finish
SELECT harness.advance(:lid, 's-' || :client_id, ('{"reference":"c-' || :lid || '","amount":' || :amount || '}')::jsonb, 'stock_commit');
\else
SELECT harness.cancel(:lid, 's-' || :client_id);
\endif
\endif
\endif
