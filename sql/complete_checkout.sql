-- The happy path: every phase in order, ledger moves, re-entry, idempotency,
-- extend, and a new checkout of the same cart once it is free.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;

INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('HP-A', 10, 1000), ('HP-B', 5, 250);

SELECT lock_id AS lock FROM checkout_start('hp-cart', 'hp-s1',
  '[{"line_id":"1","sku":"HP-A","quantity":2,"unit_price":1000},
    {"line_id":"2","sku":"HP-B","quantity":1,"unit_price":250},
    {"line_id":"3","sku":"HP-A","quantity":1,"unit_price":1000}]') \gset
SELECT cart_id, state, phase, total, order_ref, failed_phase, error_code FROM checkout_status(:lock, 'hp-s1');
SELECT expires_at - created_at = interval '15 minutes' AS default_ttl FROM checkout.locks WHERE lock_id = :lock;
SELECT line_no, line_id, sku, quantity, cart_price FROM checkout.lock_lines WHERE lock_id = :lock ORDER BY line_no;

-- re-entry by the same session returns the same lock
SELECT lock_id = :lock AS same_lock, state FROM checkout_start('hp-cart', 'hp-s1', '[{"line_id":"9","sku":"HP-B","quantity":1,"unit_price":250}]');
-- another session is refused
SELECT checkout_test.err($$SELECT checkout_start('hp-cart', 'hp-s2', '[{"line_id":"1","sku":"HP-B","quantity":1,"unit_price":250}]')$$);

-- one phase at a time, then several with until
SELECT state, phase FROM checkout_advance(:lock, 'hp-s1');
SELECT state, phase, total FROM checkout_advance(:lock, 'hp-s1', until => 'price_lock');
SELECT sku, on_hand, reserved FROM checkout.inventory WHERE sku LIKE 'HP-%' ORDER BY sku;
SELECT sku, quantity FROM checkout.reservations WHERE lock_id = :lock ORDER BY sku;
SELECT line_id, cart_price, locked_price, drift_percent = 0 AS no_drift FROM checkout.price_snapshots WHERE lock_id = :lock ORDER BY line_id;

-- catalog price changes after the lock never move the total
UPDATE checkout.inventory SET unit_price = 5000 WHERE sku = 'HP-A';
-- until stops quietly before a payment phase without payload
SELECT state, phase, total FROM checkout_advance(:lock, 'hp-s1', until => 'stock_commit');
SELECT state, phase FROM checkout_advance(:lock, 'hp-s1', '{"reference":"auth-hp","amount":3250}');
SELECT state, phase, order_ref = 'CO-' || :lock AS generated_order_ref FROM checkout_advance(:lock, 'hp-s1');
SELECT state, phase, total, order_ref = 'CO-' || :lock AS same_order FROM checkout_advance(:lock, 'hp-s1', '{"reference":"cap-hp","amount":3250}', until => 'stock_commit');
SELECT sku, on_hand, reserved FROM checkout.inventory WHERE sku LIKE 'HP-%' ORDER BY sku;
SELECT count(*) AS held FROM checkout.reservations WHERE lock_id = :lock;
SELECT order_ref = 'CO-' || :lock AS ref, cart_id, total, source, status FROM checkout.orders WHERE lock_id = :lock;
SELECT auth_reference, auth_amount, capture_reference, capture_amount, finished_at IS NOT NULL AS finished FROM checkout.locks WHERE lock_id = :lock;

-- a retry of a completed until is a no-op; a plain advance is KC004
SELECT state, phase FROM checkout_advance(:lock, 'hp-s1', '{"reference":"cap-hp","amount":3250}', until => 'payment_capture');
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L)', :lock, 'hp-s1'));

-- the cart is free again, for anyone
SELECT state, phase FROM checkout_start('hp-cart', 'hp-s2', '[{"line_id":"1","sku":"HP-B","quantity":1,"unit_price":250}]', interval '2 hours');
SELECT expires_at - created_at = interval '1 hour' AS clamped_to_max_ttl FROM checkout.locks WHERE cart_id = 'hp-cart' AND state = 'active';

-- idempotency key: the same key gives the lock it made, whatever its state
SELECT lock_id AS ilock FROM checkout_start('hp-idem', 'hp-s3', '[{"line_id":"1","sku":"HP-B","quantity":1,"unit_price":250}]', NULL, 'key-1') \gset
SELECT state FROM checkout_cancel(:ilock, 'hp-s3');
SELECT lock_id = :ilock AS same_lock, state FROM checkout_start('hp-idem', 'hp-s3', '[{"line_id":"1","sku":"HP-B","quantity":1,"unit_price":250}]', NULL, 'key-1');
SELECT checkout_test.err($$SELECT checkout_start('hp-other-cart', 'hp-s3', '[{"line_id":"1","sku":"HP-B","quantity":1,"unit_price":250}]', NULL, 'key-1')$$);

-- extend: pushes the deadline, never past created_at + max_ttl
SELECT lock_id AS elock FROM checkout_start('hp-extend', 'hp-s4', '[{"line_id":"1","sku":"HP-B","quantity":1,"unit_price":250}]', interval '10 minutes') \gset
SELECT state FROM checkout_extend(:elock, 'hp-s4', interval '5 minutes');
SELECT expires_at - created_at = interval '15 minutes' AS extended FROM checkout.locks WHERE lock_id = :elock;
SELECT state FROM checkout_extend(:elock, 'hp-s4', interval '3 hours');
SELECT expires_at - created_at = interval '1 hour' AS capped FROM checkout.locks WHERE lock_id = :elock;
SELECT state FROM checkout_cancel(:elock, 'hp-s4');
SELECT checkout_test.err(format('SELECT checkout_extend(%s, %L, %L)', :elock, 'hp-s4', '5 minutes'));

-- the application's own order: recorded as given; an order_ref already in use is KC020
SELECT lock_id AS olock FROM checkout_start('hp-own-order', 'hp-s5', '[{"line_id":"1","sku":"HP-B","quantity":1,"unit_price":250}]') \gset
SELECT state, phase FROM checkout_advance(:olock, 'hp-s5', '{"reference":"auth-o","amount":250}', until => 'payment_authorization');
SELECT state, phase, order_ref FROM checkout_advance(:olock, 'hp-s5', '{"order_ref":"APP-1001"}');
SELECT order_ref, source, status FROM checkout.orders WHERE lock_id = :olock;
SELECT lock_id AS olock2 FROM checkout_start('hp-own-order-2', 'hp-s5', '[{"line_id":"1","sku":"HP-B","quantity":1,"unit_price":250}]') \gset
SELECT state, phase FROM checkout_advance(:olock2, 'hp-s5', '{"reference":"auth-o2","amount":250}', until => 'payment_authorization');
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, %L)', :olock2, 'hp-s5', '{"order_ref":"APP-1001"}'));
SELECT state, phase FROM checkout_status(:olock2, 'hp-s5');
-- a price that grew (within tolerance) since the cart makes the locked total
-- overflow bigint: raised (22003), nothing changes
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('HP-HUGE', 5, 4611686018427387903);
SELECT lock_id AS hlock FROM checkout_start('hp-huge', 'hp-s6', '[{"line_id":"1","sku":"HP-HUGE","quantity":2,"unit_price":4611686018427387903}]') \gset
SELECT state, phase FROM checkout_advance(:hlock, 'hp-s6', until => 'inventory_reservation');
UPDATE checkout.inventory SET unit_price = 4611686018427387904 WHERE sku = 'HP-HUGE';
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L)', :hlock, 'hp-s6'));
SELECT state, phase, total FROM checkout_status(:hlock, 'hp-s6');
SELECT count(*) AS snapshots FROM checkout.price_snapshots WHERE lock_id = :hlock;
-- a user's trigger on a table a late reservation writes (here one on
-- checkout.price_snapshots advancing another lock from inside the call): the
-- call locks the ledger rows first instead; both locks reach price_lock and
-- hold their stock, with each event once
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('HP-T', 10, 250);
SELECT lock_id AS tlock1 FROM checkout_start('hp-trig-1', 'hp-s7', '[{"line_id":"1","sku":"HP-T","quantity":1,"unit_price":250}]') \gset
SELECT lock_id AS tlock2 FROM checkout_start('hp-trig-2', 'hp-s7', '[{"line_id":"1","sku":"HP-T","quantity":2,"unit_price":250}]') \gset
-- (the trigger runs under the API's pinned search_path: the call names its schema)
SELECT extnamespace::regnamespace AS extschema FROM pg_extension WHERE extname = 'checkout' \gset
CREATE FUNCTION pg_temp.advance_other() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.lock_id = current_setting('hp.outer')::bigint THEN
    EXECUTE format('SELECT %I.checkout_advance($1, $2, until => $3)', current_setting('hp.extschema'))
      USING current_setting('hp.inner')::bigint, 'hp-s7', 'price_lock'::checkout.phase;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER advance_other AFTER INSERT ON checkout.price_snapshots FOR EACH ROW EXECUTE FUNCTION pg_temp.advance_other();
SELECT set_config('hp.outer', :'tlock1', false) IS NOT NULL AS set_outer, set_config('hp.inner', :'tlock2', false) IS NOT NULL AS set_inner,
       set_config('hp.extschema', :'extschema', false) IS NOT NULL AS set_schema;
SET checkout.log_destination = 'table';
SET checkout.log_events = 'all';
SELECT reserved AS reserved_before FROM checkout.inventory WHERE sku = 'HP-T' \gset
SELECT state, phase, total FROM checkout_advance(:tlock1, 'hp-s7', until => 'price_lock');
RESET checkout.log_events;
RESET checkout.log_destination;
DROP TRIGGER advance_other ON checkout.price_snapshots;
SELECT lock_id = :tlock1 AS outer_lock, state, phase, total FROM checkout_status(:tlock1, 'hp-s7')
UNION ALL SELECT lock_id = :tlock1, state, phase, total FROM checkout_status(:tlock2, 'hp-s7') ORDER BY 1 DESC;
SELECT reserved - :reserved_before AS reserved_now, (SELECT sum(quantity) FROM checkout.reservations WHERE lock_id IN (:tlock1, :tlock2)) AS held
  FROM checkout.inventory WHERE sku = 'HP-T';
SELECT lock_id = :tlock1 AS outer_lock, event, count(*) FROM checkout.events
 WHERE lock_id IN (:tlock1, :tlock2) GROUP BY 1, 2 ORDER BY 1 DESC, 2;
