-- Order references cannot be squatted (issue 8): generated references are
-- CO-<lock_id>, so an application order_ref starting with CO- is refused
-- (KC020) and writes nothing.  In 0.1.0 a session could take "CO-<the next
-- lock id>" and make the next session's order creation fail with KC020.
BEGIN;
SELECT plan(8);

CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN '00000';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
CREATE FUNCTION pg_temp.line() RETURNS jsonb LANGUAGE sql
    AS $$ SELECT '[{"line_id":"1","sku":"OR-1","quantity":1,"unit_price":100}]'::jsonb $$;
CREATE FUNCTION pg_temp.order_payload(ref text) RETURNS text LANGUAGE sql
    AS $$ SELECT jsonb_build_object('order_ref', ref)::text $$;

INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('OR-1', 10, 100);
-- mallory's two locks and bob's wait at order creation; the next lock anyone
-- takes is victim_id
CREATE FUNCTION pg_temp.at_order_creation(cart text, sess text) RETURNS bigint LANGUAGE sql AS $$
    SELECT lock_id FROM checkout_advance((checkout_start(cart, sess, pg_temp.line())).lock_id, sess,
                                         '{"reference":"auth","amount":100}', until => 'payment_authorization')
$$;
CREATE TEMP TABLE or_locks AS
SELECT pg_temp.at_order_creation('or-squat', 'mallory') AS squatter,
       pg_temp.at_order_creation('or-squat-2', 'mallory') AS squatter2,
       pg_temp.at_order_creation('or-plain', 'bob') AS plain;
ALTER TABLE or_locks ADD COLUMN victim_id bigint;
UPDATE or_locks SET victim_id = currval(pg_get_serial_sequence('checkout.locks', 'lock_id')) + 1;

SELECT is(pg_temp.sqlstate_of(format('SELECT checkout_advance(%s, %L, %L)', squatter, 'mallory',
                                     pg_temp.order_payload('CO-' || victim_id))),
          'KC020', 'an application order_ref "CO-<the next lock id>" is refused (KC020)')
FROM or_locks;
SELECT is(pg_temp.sqlstate_of(format('SELECT checkout_advance(%s, %L, %L)', squatter2, 'mallory', pg_temp.order_payload('CO-'))),
          'KC020', '... and so is "CO-" itself')
FROM or_locks;
SELECT is((SELECT count(*) FROM checkout.orders o, or_locks l WHERE o.lock_id IN (l.squatter, l.squatter2) OR o.order_ref LIKE 'CO-%'),
          0::bigint, '... and no order was written');
SELECT is((SELECT string_agg(phase::text, ',') FROM checkout.locks l, or_locks o WHERE l.lock_id IN (o.squatter, o.squatter2)),
          'payment_authorization,payment_authorization', '... the locks did not move');

-- alice takes the next lock: its generated reference is free
SELECT is((SELECT lock_id FROM checkout_start('or-victim', 'alice', pg_temp.line())), victim_id, 'alice''s lock is the next one')
FROM or_locks;
SELECT is(pg_temp.sqlstate_of(format('SELECT checkout_advance(%s, %L, %L, until => %L)', victim_id, 'alice',
                                     '{"reference":"auth-a","amount":100}', 'order_creation')),
          '00000', 'alice''s order creation succeeds')
FROM or_locks;
SELECT is((SELECT o.order_ref FROM checkout.orders o, or_locks l WHERE o.lock_id = l.victim_id), 'CO-' || victim_id,
          '... with its generated CO-<lock_id>')
FROM or_locks;

-- an application's own reference is still welcome
SELECT is(pg_temp.sqlstate_of(format('SELECT checkout_advance(%s, %L, %L)', plain, 'bob', pg_temp.order_payload('shop-77'))),
          '00000', 'an application order_ref not starting with CO- is accepted')
FROM or_locks;

SELECT * FROM finish();
ROLLBACK;
