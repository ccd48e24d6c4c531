-- Bad input to checkout_start raises 22023 (or 22003 for overflowing totals)
-- and writes nothing; session ownership, re-entry and idempotency.
\ir ../fixtures/checkout_test.sql
BEGIN;
SELECT plan(26);
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('BI-1', 10, 100);
CREATE TEMP TABLE before_counts AS SELECT (SELECT count(*) FROM checkout.locks) AS locks, (SELECT count(*) FROM checkout.lock_lines) AS lines;

SELECT throws_ok(format('SELECT checkout_start(%L, %L, %L)', 'bi', 's', l), '22023', NULL, 'rejects ' || why)
FROM (VALUES
  ('{}', 'an object'), ('"x"', 'a scalar'), ('[]', 'an empty cart'), ('[null]', 'a null line'),
  ('[{"sku":"BI-1","quantity":1,"unit_price":1}]', 'a missing line_id'),
  ('[{"line_id":"","sku":"BI-1","quantity":1,"unit_price":1}]', 'an empty line_id'),
  ('[{"line_id":"1","quantity":1,"unit_price":1}]', 'a missing sku'),
  ('[{"line_id":"1","sku":"BI-1","unit_price":1}]', 'a missing quantity'),
  ('[{"line_id":"1","sku":"BI-1","quantity":1}]', 'a missing unit_price'),
  ('[{"line_id":"1","sku":"BI-1","quantity":0,"unit_price":1}]', 'quantity 0'),
  ('[{"line_id":"1","sku":"BI-1","quantity":-3,"unit_price":1}]', 'a negative quantity'),
  ('[{"line_id":"1","sku":"BI-1","quantity":2.5,"unit_price":1}]', 'a fractional quantity'),
  ('[{"line_id":"1","sku":"BI-1","quantity":1,"unit_price":-1}]', 'a negative price'),
  ('[{"line_id":"1","sku":"BI-1","quantity":1,"unit_price":9.99}]', 'a fractional price'),
  ('[{"line_id":"1","sku":"BI-1","quantity":100000000000000000000,"unit_price":1}]', 'a quantity beyond bigint'),
  ('[{"line_id":"1","sku":"BI-1","quantity":1,"unit_price":1},{"line_id":"1","sku":"BI-1","quantity":1,"unit_price":1}]', 'a duplicate line_id')
) t(l, why);
SELECT throws_ok($$SELECT checkout_start('bi', 's', '[{"line_id":"1","sku":"BI-1","quantity":3,"unit_price":4611686018427387904}]')$$,
                 '22003', NULL, 'a total beyond bigint raises 22003');
SELECT throws_ok($$SELECT checkout_start(NULL, 's', '[{"line_id":"1","sku":"BI-1","quantity":1,"unit_price":1}]')$$, '22023', NULL, 'NULL cart_id');
SELECT throws_ok($$SELECT checkout_start('bi', NULL, '[{"line_id":"1","sku":"BI-1","quantity":1,"unit_price":1}]')$$, '22023', NULL, 'NULL session_id');
SELECT throws_ok($$SELECT checkout_start('bi', 's', '[{"line_id":"1","sku":"BI-1","quantity":1,"unit_price":1}]', interval '0 seconds')$$, '22023', NULL, 'zero ttl');
SELECT throws_ok($$SELECT checkout_start('bi', 's', '[{"line_id":"1","sku":"BI-1","quantity":1,"unit_price":1}]', interval '-1 hour')$$, '22023', NULL, 'negative ttl');
SELECT is((SELECT ROW(count(*), (SELECT count(*) FROM checkout.lock_lines)) FROM checkout.locks),
          (SELECT ROW(locks, lines) FROM before_counts), 'nothing was written');

-- ownership, re-entry, idempotency
SELECT is((SELECT state::text FROM checkout_start('bi-own', 'owner', '[{"line_id":"1","sku":"BI-1","quantity":1,"unit_price":100}]', NULL, 'k1')), 'active', 'a lock is taken');
SELECT throws_ok(format('SELECT checkout_status(%s, %L)', (SELECT max(lock_id) FROM checkout.locks), 'thief'), 'KC002', NULL, 'another session cannot see it');
SELECT is((SELECT lock_id FROM checkout_start('bi-own', 'owner', '[{"line_id":"2","sku":"BI-1","quantity":5,"unit_price":100}]')),
          (SELECT max(lock_id) FROM checkout.locks), 're-entry returns the same lock');
SELECT is((SELECT lock_id FROM checkout_start('bi-own', 'owner', '[{"line_id":"1","sku":"BI-1","quantity":1,"unit_price":100}]', NULL, 'k1')),
          (SELECT max(lock_id) FROM checkout.locks), 'the idempotency key returns the lock it made');

SELECT * FROM finish();
ROLLBACK;
