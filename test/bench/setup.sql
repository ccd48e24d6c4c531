-- Set-up shared by make bench and make stress: the extension, N skus of
-- :stock units at price 100 in checkout.inventory (and a copy for the plain-SQL
-- baseline), the initial stock and a restock journal for the invariant check.
-- psql variables: nskus, stock.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS checkout;
CREATE SCHEMA harness;
CREATE TABLE harness.initial (sku text PRIMARY KEY, stock bigint NOT NULL);
CREATE TABLE harness.restocks (sku text NOT NULL, quantity bigint NOT NULL);
CREATE TABLE harness.inventory (LIKE checkout.inventory INCLUDING ALL);
CREATE TABLE harness.orders (
    id         bigserial PRIMARY KEY,
    cart_id    text NOT NULL,
    session_id text NOT NULL,
    sku        text NOT NULL,
    quantity   bigint NOT NULL,
    total      bigint NOT NULL,
    state      text NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO checkout.inventory (sku, on_hand, unit_price)
  SELECT 'S-' || g, :stock, 100 FROM generate_series(1, :nskus) g;
INSERT INTO harness.inventory SELECT * FROM checkout.inventory;
INSERT INTO harness.initial SELECT sku, on_hand FROM checkout.inventory;

-- Calls that may meet a lock another actor (the worker, a sweep) expired a
-- moment ago: KC004 (lock not active) is an expected outcome there, every other
-- error is not and is raised.
CREATE FUNCTION harness.advance(lid bigint, sess text, payload jsonb, upto checkout.phase)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text;
BEGIN
    SELECT state INTO st FROM checkout_advance(lid, sess, payload, upto);
    RETURN st;
EXCEPTION WHEN SQLSTATE 'KC004' THEN
    RETURN 'not_active';
END $$;
-- checkout_start on a cart several clients share: KC001 (another session holds
-- it) is the expected outcome; returns 0 then.
CREATE FUNCTION harness.start(cart text, sess text, lines jsonb, ttl interval)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE lid bigint;
BEGIN
    SELECT lock_id INTO lid FROM checkout_start(cart, sess, lines, ttl);
    RETURN lid;
EXCEPTION WHEN SQLSTATE 'KC001' THEN
    RETURN 0;
END $$;
CREATE FUNCTION harness.cancel(lid bigint, sess text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text;
BEGIN
    SELECT state INTO st FROM checkout_cancel(lid, sess);
    RETURN st;
EXCEPTION WHEN SQLSTATE 'KC004' THEN
    RETURN 'not_active';
END $$;
-- A negative restock (journaled like a restock when it goes through): with
-- fewer units left on hand than reserved the catalog is refused (23514),
-- an expected outcome under load; returns whether it went through.
CREATE FUNCTION harness.destock(s text, n bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    WITH r AS (UPDATE checkout.inventory SET on_hand = on_hand - n WHERE sku = s RETURNING sku)
    INSERT INTO harness.restocks SELECT sku, -n FROM r;
    RETURN true;
EXCEPTION WHEN SQLSTATE '23514' THEN
    RETURN false;
END $$;
-- checkout_stripe under load: a restock holding the sku's row refuses it at
-- once (55P03, NOWAIT), an expected outcome; returns the stripes, 0 then.
CREATE FUNCTION harness.restripe(s text, n integer)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RETURN checkout_stripe(s, n);
EXCEPTION WHEN SQLSTATE '55P03' THEN
    RETURN 0;
END $$;
ANALYZE;
