-- stress: a one-second lock touched after its deadline: expired on touch (or
-- already by the worker or a sweep).
\set a random(1, :nskus)
\set b random(1, :nskus)
\set qa random(1, 2)
\set qb random(1, 2)
\set r random(1, 1000000000)
\set amount (:qa + :qb) * 100
SELECT lock_id AS lid FROM checkout_start('t-' || :client_id || '-' || :r, 's-' || :client_id,
  ('[{"line_id":"1","sku":"S-' || :a || '","quantity":' || :qa || ',"unit_price":100},{"line_id":"2","sku":"S-' || :b || '","quantity":' || :qb || ',"unit_price":100}]')::jsonb, ttl => '1 second') \gset
SELECT harness.advance(:lid, 's-' || :client_id, '{}', 'price_lock');
\sleep 1100 ms
SELECT harness.advance(:lid, 's-' || :client_id, ('{"reference":"a-' || :lid || '","amount":' || :amount || '}')::jsonb, 'payment_authorization');
