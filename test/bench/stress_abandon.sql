-- stress: a checkout with a one-second ttl, abandoned after price_lock, after
-- the authorisation or after the capture (whose expiry rolls forward); the
-- worker or a sweep expires it.
\set a random(1, :nskus)
\set b random(1, :nskus)
\set qa random(1, 2)
\set qb random(1, 2)
\set r random(1, 1000000000)
\set amount (:qa + :qb) * 100
\set stage random(1, 3)
SELECT lock_id AS lid FROM checkout_start('a-' || :client_id || '-' || :r, 's-' || :client_id,
  ('[{"line_id":"1","sku":"S-' || :a || '","quantity":' || :qa || ',"unit_price":100},{"line_id":"2","sku":"S-' || :b || '","quantity":' || :qb || ',"unit_price":100}]')::jsonb, ttl => '1 second') \gset
SELECT (harness.advance(:lid, 's-' || :client_id, '{}', 'price_lock') = 'active')::int AS live \gset
\if :live
\if :stage >= 2
SELECT (harness.advance(:lid, 's-' || :client_id, ('{"reference":"a-' || :lid || '","amount":' || :amount || '}')::jsonb, NULL) = 'active')::int AS live \gset
\endif
\endif
\if :live
\if :stage >= 3
SELECT harness.advance(:lid, 's-' || :client_id, ('{"reference":"c-' || :lid || '","amount":' || :amount || '}')::jsonb, 'payment_capture');
\endif
\endif
