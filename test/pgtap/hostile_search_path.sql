-- The C functions pin the search path in C (pg_catalog only while they run
-- SQL) instead of a SET clause: a caller whose search_path puts a schema of
-- its own before pg_catalog, holding exact-match operators for the types the
-- API compares, must not get any of them called — also when the plans were
-- first made under another path (the plan cache re-checks them then).
\ir ../fixtures/checkout_test.sql
BEGIN;
SELECT plan(8);

INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('HSP-1', 10, 100);
SELECT lives_ok($$SELECT checkout_cancel((checkout_start('hsp-warm', 's', checkout_test.one_line('HSP-1', 1, 100))).lock_id, 's')$$,
                'a checkout under the default search_path (plans prepared)');

CREATE SCHEMA hsp_evil;
CREATE FUNCTION hsp_evil.trap(bigint, bigint) RETURNS boolean LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'planted operator called' USING ERRCODE = 'XX999'; END $$;
CREATE FUNCTION hsp_evil.trap(text, text) RETURNS boolean LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'planted operator called' USING ERRCODE = 'XX999'; END $$;
CREATE OPERATOR hsp_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = hsp_evil.trap);
CREATE OPERATOR hsp_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hsp_evil.trap);
CREATE OPERATOR hsp_evil.> (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = hsp_evil.trap);
CREATE OPERATOR hsp_evil.<= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = hsp_evil.trap);
CREATE TEMP TABLE hsp_seen (step int, what text);

-- Under the hostile path, only statements that compare nothing themselves:
-- the API's results go to a table and are checked after RESET.
SET search_path = hsp_evil, pg_catalog, public;
DO $$ BEGIN PERFORM 1::bigint = 1::bigint; EXCEPTION WHEN SQLSTATE 'XX999' THEN
    INSERT INTO hsp_seen VALUES (0, 'trap works'); END $$;
INSERT INTO hsp_seen SELECT 1, lock_id::text FROM checkout_start('hsp-1', 's', checkout_test.one_line('HSP-1', 2, 100));
INSERT INTO hsp_seen SELECT 2, state::text || '/' || phase::text
    FROM checkout_advance(currval('checkout.locks_lock_id_seq'), 's', until => 'price_lock');
INSERT INTO hsp_seen SELECT 3, state::text
    FROM checkout_advance(currval('checkout.locks_lock_id_seq'), 's', checkout_test.pay('a-1', 200), until => 'payment_authorization');
INSERT INTO hsp_seen SELECT 4, state::text
    FROM checkout_advance(currval('checkout.locks_lock_id_seq'), 's', checkout_test.pay('c-1', 200), until => 'stock_commit');
INSERT INTO hsp_seen SELECT 5, state::text FROM checkout_status(currval('checkout.locks_lock_id_seq'), 's');
INSERT INTO hsp_seen SELECT 6, checkout_cleanup_expired()::text;
RESET search_path;

SELECT is((SELECT what FROM hsp_seen WHERE step = 0), 'trap works', 'the planted operators win for the caller''s own SQL');
SELECT isnt((SELECT what FROM hsp_seen WHERE step = 1), NULL, 'checkout_start ignores the caller''s search_path');
SELECT is((SELECT what FROM hsp_seen WHERE step = 2), 'active/price_lock', 'checkout_advance reserves and locks prices');
SELECT is((SELECT what FROM hsp_seen WHERE step = 3), 'active', 'authorisation');
SELECT is((SELECT what FROM hsp_seen WHERE step = 4), 'completed', 'capture and stock commit');
SELECT is((SELECT what || '/' || (SELECT what FROM hsp_seen WHERE step = 6) FROM hsp_seen WHERE step = 5),
          'completed/0', 'checkout_status and checkout_cleanup_expired');
SELECT is((SELECT on_hand FROM checkout.inventory WHERE sku = 'HSP-1'), 8::bigint, 'the stock moved as it should');

SELECT * FROM finish();
ROLLBACK;
