-- Every error the API raises, with its SQLSTATE; none of them changes anything.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('EC-A', 5, 100);
SELECT lock_id AS l FROM checkout_start('ec-cart', 'ec-s', '[{"line_id":"1","sku":"EC-A","quantity":1,"unit_price":100}]') \gset
SELECT count(*) AS locks_before FROM checkout.locks \gset

-- 22023: malformed lines, NULLs, TTL
SELECT checkout_test.err(q) FROM (VALUES
  ($$SELECT checkout_start('ec-x', 's', '{"line_id":"1"}')$$),
  ($$SELECT checkout_start('ec-x', 's', '[]')$$),
  ($$SELECT checkout_start('ec-x', 's', '[1]')$$),
  ($$SELECT checkout_start('ec-x', 's', '[{"sku":"EC-A","quantity":1,"unit_price":1}]')$$),
  ($$SELECT checkout_start('ec-x', 's', '[{"line_id":1,"sku":"EC-A","quantity":1,"unit_price":1}]')$$),
  ($$SELECT checkout_start('ec-x', 's', '[{"line_id":"1","quantity":1,"unit_price":1}]')$$),
  ($$SELECT checkout_start('ec-x', 's', '[{"line_id":"1","sku":"EC-A","unit_price":1}]')$$),
  ($$SELECT checkout_start('ec-x', 's', '[{"line_id":"1","sku":"EC-A","quantity":0,"unit_price":1}]')$$),
  ($$SELECT checkout_start('ec-x', 's', '[{"line_id":"1","sku":"EC-A","quantity":1.5,"unit_price":1}]')$$),
  ($$SELECT checkout_start('ec-x', 's', '[{"line_id":"1","sku":"EC-A","quantity":"2","unit_price":1}]')$$),
  ($$SELECT checkout_start('ec-x', 's', '[{"line_id":"1","sku":"EC-A","quantity":1,"unit_price":-1}]')$$),
  ($$SELECT checkout_start('ec-x', 's', '[{"line_id":"1","sku":"EC-A","quantity":1e19,"unit_price":1}]')$$),
  ($$SELECT checkout_start('ec-x', 's', '[{"line_id":"1","sku":"EC-A","quantity":1,"unit_price":1},{"line_id":"1","sku":"EC-A","quantity":1,"unit_price":1}]')$$),
  ($$SELECT checkout_start(NULL, 's', '[{"line_id":"1","sku":"EC-A","quantity":1,"unit_price":1}]')$$),
  ($$SELECT checkout_start('ec-x', '', '[{"line_id":"1","sku":"EC-A","quantity":1,"unit_price":1}]')$$),
  ($$SELECT checkout_start('ec-x', 's', NULL)$$),
  ($$SELECT checkout_start('ec-x', 's', '[{"line_id":"1","sku":"EC-A","quantity":1,"unit_price":1}]', interval '0')$$),
  ($$SELECT checkout_start('ec-x', 's', '[{"line_id":"1","sku":"EC-A","quantity":1,"unit_price":1}]', interval '-5 minutes')$$),
  ($$SELECT checkout_cleanup_expired(0)$$),
  ($$SELECT checkout_advance(NULL, 's')$$)
) t(q);
-- 22003: totals that overflow bigint
SELECT checkout_test.err($$SELECT checkout_start('ec-x', 's', '[{"line_id":"1","sku":"EC-A","quantity":2,"unit_price":9223372036854775807}]')$$);
SELECT checkout_test.err($$SELECT checkout_start('ec-x', 's', '[{"line_id":"1","sku":"EC-A","quantity":9223372036854775807,"unit_price":0},{"line_id":"2","sku":"EC-A","quantity":1,"unit_price":0}]')$$);
-- KC001: another session
SELECT checkout_test.err($$SELECT checkout_start('ec-cart', 'intruder', '[{"line_id":"1","sku":"EC-A","quantity":1,"unit_price":100}]')$$);
-- KC002: unknown lock, or another session's (same message)
SELECT checkout_test.err($$SELECT checkout_status(-1, 'ec-s')$$);
SELECT checkout_test.err(format('SELECT checkout_status(%s, %L)', :l, 'intruder'));
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L)', :l, 'intruder'));
SELECT checkout_test.err(format('SELECT checkout_extend(%s, %L, %L)', :l, 'intruder', '1 minute'));
SELECT checkout_test.err(format('SELECT checkout_cancel(%s, %L)', :l, 'intruder'));
SELECT checkout_test.err(format('SELECT checkout_fail(%s, %L, %L)', :l, 'intruder', 'x'));
SELECT checkout_test.err($$SELECT checkout_release(-1, 'x')$$);
-- KC020: payment phase without payload, malformed payloads
SELECT state, phase FROM checkout_advance(:l, 'ec-s', until => 'price_lock');
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L)', :l, 'ec-s'));
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, %L)', :l, 'ec-s', p)) FROM (VALUES
  ('[1]'), ('"x"'), ('{"reference":"r"}'), ('{"amount":100}'), ('{"reference":"","amount":100}'),
  ('{"reference":"r","amount":"100"}'), ('{"reference":"r","amount":-1}'), ('{"reference":"r","amount":1.5}'),
  ('{"order_ref":7}')) t(p);
SELECT state, phase FROM checkout_status(:l, 'ec-s');
-- 25006: a read-only transaction (a hot standby's) neither locks nor changes the lock
BEGIN READ ONLY;
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, %L)', :l, 'ec-s', '{"reference":"r","amount":100}'));
SELECT checkout_test.err(format('SELECT checkout_extend(%s, %L, %L)', :l, 'ec-s', '1 minute'));
SELECT checkout_test.err(format('SELECT checkout_cancel(%s, %L)', :l, 'ec-s'));
ROLLBACK;
-- 22023 for extend by a non-positive interval
SELECT checkout_test.err(format('SELECT checkout_extend(%s, %L, %L)', :l, 'ec-s', '0 seconds'));
-- KC004: not active
SELECT state FROM checkout_cancel(:l, 'ec-s');
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L)', :l, 'ec-s'));
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, until => %L)', :l, 'ec-s', 'stock_commit'));
SELECT checkout_test.err(format('SELECT checkout_cancel(%s, %L)', :l, 'ec-s'));
SELECT checkout_test.err(format('SELECT checkout_fail(%s, %L, %L)', :l, 'ec-s', 'x'));
SELECT checkout_test.err(format('SELECT checkout_release(%s, %L)', :l, 'x'));
-- nothing was written by any of the failed calls
SELECT count(*) = :locks_before AS no_new_locks FROM checkout.locks;
SELECT on_hand, reserved FROM checkout.inventory WHERE sku = 'EC-A';
