-- Hostile sizes (issue 8): a cart is capped by checkout.max_lines (superuser,
-- default 1000, 22023 naming the limit); parsing a huge cart is fast and
-- interruptible (a 40,000-line cart is answered within a 10 s
-- statement_timeout, 0.1.0 took over a minute and ignored it); identifiers
-- are at most 255 bytes and a reason at most 1000, longer ones raise 22023
-- up front and write nothing.  Every call goes through pg_temp.outcome, which
-- catches the error (query_canceled included) so one failure cannot hide the
-- rest of the file.
BEGIN;
SELECT plan(40);

-- code: the SQLSTATE ('00000' when the statement succeeded), message, seconds
-- taken.  The outer block catches a statement_timeout that fires while the
-- inner handler runs (0.1.0 parses without checking for interrupts, so the
-- cancel is still pending when its 22023 arrives).
CREATE FUNCTION pg_temp.outcome(stmt text, OUT code text, OUT message text, OUT seconds numeric)
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    BEGIN
        BEGIN
            EXECUTE stmt;
            code := '00000';
        EXCEPTION WHEN OTHERS THEN
            code := SQLSTATE;
            message := SQLERRM;
        END;
    EXCEPTION WHEN query_canceled THEN
        code := SQLSTATE;
        message := SQLERRM;
    END;
    seconds := extract(epoch FROM clock_timestamp() - t0);
END $$;

-- n lines with distinct line_ids and skus sharing a prefix of prefix bytes,
-- as an attacker's would (every pairwise comparison of 0.1.0 reads the whole
-- prefix); with dup, one more line repeating line 1's line_id.
CREATE FUNCTION pg_temp.cart(n int, prefix int DEFAULT 0, dup boolean DEFAULT false) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_agg(jsonb_build_object('line_id', repeat('l', prefix) || i, 'sku', repeat('s', prefix) || i,
                                        'quantity', 1, 'unit_price', 1) ORDER BY i)
           || CASE WHEN dup THEN jsonb_build_array(jsonb_build_object('line_id', repeat('l', prefix) || 1, 'sku', 'HS-X',
                                                                       'quantity', 1, 'unit_price', 1))
                   ELSE '[]'::jsonb END
    FROM generate_series(1, n) i
$$;
CREATE FUNCTION pg_temp.line(line_id text, sku text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_array(jsonb_build_object('line_id', line_id, 'sku', sku, 'quantity', 1, 'unit_price', 100))
$$;
CREATE FUNCTION pg_temp.pay(ref text, amount bigint) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('reference', ref, 'amount', amount)
$$;

-- the setting
SELECT is(current_setting('checkout.max_lines', true), '1000', 'checkout.max_lines exists, default 1000');
SELECT is((SELECT context FROM pg_settings WHERE name = 'checkout.max_lines'), 'superuser', '... a superuser setting');
SELECT is((SELECT min_val || '..' || max_val FROM pg_settings WHERE name = 'checkout.max_lines'), '1..100000', '... from 1 to 100000');

-- the cap
CREATE TEMP TABLE hs_carts AS SELECT pg_temp.cart(1000) AS c1000, pg_temp.cart(1001) AS c1001;
CREATE TEMP TABLE hs_cap AS
SELECT * FROM pg_temp.outcome($$SELECT checkout_start('hs-1001', 's', (SELECT c1001 FROM hs_carts))$$);
SELECT is(code, '22023', 'a 1001-line cart is rejected (22023)') FROM hs_cap;
SELECT ok(message ~ 'checkout\.max_lines', '... naming checkout.max_lines: ' || coalesce(message, 'no error')) FROM hs_cap;
SELECT is((SELECT count(*) FROM checkout.locks WHERE cart_id = 'hs-1001'), 0::bigint, '... and nothing is written');
SELECT is((SELECT code FROM pg_temp.outcome($$SELECT checkout_start('hs-1000', 's', (SELECT c1000 FROM hs_carts))$$)),
          '00000', 'a 1000-line cart is accepted');

-- 40,000 lines under a 10 s statement_timeout (superuser raises the cap)
SELECT lives_ok($$SET LOCAL checkout.max_lines = 100000$$, 'a superuser may raise checkout.max_lines to 100000');
-- (0.1.0 needs minutes for each on 2 shared cores, and cannot be cancelled meanwhile)
CREATE TEMP TABLE hs_big AS SELECT pg_temp.cart(39999, 200, true) AS dup, pg_temp.cart(40000, 100) AS ok;
SET LOCAL statement_timeout = '10s';
CREATE TEMP TABLE hs_dup AS
SELECT * FROM pg_temp.outcome($$SELECT checkout_start('hs-big-dup', 's', (SELECT dup FROM hs_big))$$);
CREATE TEMP TABLE hs_ok AS
SELECT * FROM pg_temp.outcome($$SELECT checkout_start('hs-big-ok', 's', (SELECT ok FROM hs_big))$$);
RESET statement_timeout;
SELECT is(code || CASE WHEN seconds < 10 THEN '' ELSE ' after ' || round(seconds) || ' s' END, '22023',
          'a 40,000-line cart whose last line repeats a line_id is rejected (22023) within the 10 s statement_timeout')
FROM hs_dup;
SELECT is(code || CASE WHEN seconds < 10 THEN '' ELSE ' after ' || round(seconds) || ' s' END, '00000',
          'a valid 40,000-line cart is accepted within the 10 s statement_timeout')
FROM hs_ok;
SELECT is((SELECT count(*) FROM checkout.lock_lines ll JOIN checkout.locks l USING (lock_id) WHERE l.cart_id = 'hs-big-ok'),
          40000::bigint, '... with its 40,000 lines');

-- identifiers: locks waiting at each payment phase, and a sku to buy
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('HS-A', 100, 100);
CREATE TEMP TABLE hs_locks AS
SELECT (SELECT lock_id FROM checkout_advance((checkout_start('hs-auth', 'hs', pg_temp.line('1', 'HS-A'))).lock_id, 'hs',
            until => 'price_lock')) AS at_auth,
       (SELECT lock_id FROM checkout_advance((checkout_start('hs-order', 'hs', pg_temp.line('1', 'HS-A'))).lock_id, 'hs',
            pg_temp.pay('auth-o', 100), until => 'payment_authorization')) AS at_order,
       (SELECT lock_id FROM checkout_advance((checkout_start('hs-capture', 'hs', pg_temp.line('1', 'HS-A'))).lock_id, 'hs',
            pg_temp.pay('auth-c', 100), until => 'order_creation')) AS at_capture,
       (SELECT lock_id FROM checkout_start('hs-fail', 'hs', pg_temp.line('1', 'HS-A'))) AS to_fail,
       (SELECT lock_id FROM checkout_start('hs-release', 'hs', pg_temp.line('1', 'HS-A'))) AS to_release;
-- what must not change: the row counts, and each of those locks' state and phase
CREATE FUNCTION pg_temp.footprint() RETURNS text LANGUAGE sql AS $$
    SELECT ROW((SELECT count(*) FROM checkout.locks), (SELECT count(*) FROM checkout.lock_lines),
               (SELECT count(*) FROM checkout.orders), (SELECT count(*) FROM checkout.compensations),
               (SELECT string_agg(l.state || ':' || coalesce(l.phase::text, '-'), ',' ORDER BY l.lock_id)
                FROM checkout.locks l, hs_locks h
                WHERE l.lock_id IN (h.at_auth, h.at_order, h.at_capture, h.to_fail, h.to_release)))::text
$$;
CREATE TEMP TABLE hs_before AS SELECT pg_temp.footprint() AS footprint;

CREATE TEMP TABLE hs_long AS
SELECT n, name, o.* FROM hs_locks h, LATERAL (VALUES
    (1, 'cart_id', format('SELECT checkout_start(%L, %L, %L)', repeat('c', 256), 'hs', pg_temp.line('1', 'HS-A'))),
    (2, 'cart_id', format('SELECT checkout_start(%L, %L, %L)', repeat(chr(233), 128), 'hs', pg_temp.line('1', 'HS-A'))),
    (3, 'session_id', format('SELECT checkout_start(%L, %L, %L)', 'hs-long-3', repeat('s', 256), pg_temp.line('1', 'HS-A'))),
    (4, 'session_id', format('SELECT checkout_start(%L, %L, %L)', 'hs-long-4', repeat('s', 1024 * 1024), pg_temp.line('1', 'HS-A'))),
    (5, 'idempotency_key', format('SELECT checkout_start(%L, %L, %L, NULL, %L)', 'hs-long-5', 'hs', pg_temp.line('1', 'HS-A'), repeat('k', 256))),
    (6, 'sku', format('SELECT checkout_start(%L, %L, %L)', 'hs-long-6', 'hs', pg_temp.line('1', repeat('u', 256)))),
    (7, 'line_id', format('SELECT checkout_start(%L, %L, %L)', 'hs-long-7', 'hs', pg_temp.line(repeat('l', 256), 'HS-A'))),
    (8, 'reference', format('SELECT checkout_advance(%s, %L, %L)', h.at_auth, 'hs', pg_temp.pay(repeat('a', 256), 100))),
    (9, 'order_ref', format('SELECT checkout_advance(%s, %L, %L)', h.at_order, 'hs', jsonb_build_object('order_ref', repeat('o', 256)))),
    (10, 'reference', format('SELECT checkout_advance(%s, %L, %L)', h.at_capture, 'hs', pg_temp.pay(repeat('p', 256), 100))),
    (11, 'reason', format('SELECT checkout_fail(%s, %L, %L)', h.to_fail, 'hs', repeat('r', 1001))),
    (12, 'reason', format('SELECT checkout_release(%s, %L)', h.to_release, repeat('r', 1001)))
) v(n, name, stmt), LATERAL pg_temp.outcome(v.stmt) o;

SELECT is(code, '22023', format('%s over its limit (%s) is rejected with 22023', name,
          CASE n WHEN 2 THEN '128 two-byte characters = 256 bytes' WHEN 4 THEN '1 MB' WHEN 11 THEN '1001 bytes, checkout_fail'
                 WHEN 12 THEN '1001 bytes, checkout_release' WHEN 8 THEN '256 bytes, authorisation'
                 WHEN 10 THEN '256 bytes, capture' ELSE '256 bytes' END))
FROM hs_long ORDER BY n;
SELECT ok(message ~ name, format('... and the message names %s: %s', name, coalesce(message, 'no error')))
FROM hs_long WHERE n IN (1, 3, 5, 6, 7, 8, 9, 11) ORDER BY n;
SELECT ok(octet_length(message) < 1000 AND strpos(message, repeat('s', 256)) = 0,
          'the 1 MB session_id is not echoed in the message')
FROM hs_long WHERE n = 4;
SELECT is(pg_temp.footprint(), (SELECT footprint FROM hs_before),
          'nothing was written: no lock, line, order or compensation; the five locks did not move');

-- exactly 255 bytes is accepted everywhere, on a whole checkout
CREATE TEMP TABLE hs_255 AS
SELECT repeat(chr(233), 127) || 'c' AS cart, repeat('s', 255) AS sess, repeat('k', 255) AS key, repeat('u', 255) AS sku,
       repeat('l', 255) AS line_id, repeat('a', 255) AS auth, repeat('o', 255) AS order_ref, repeat('p', 255) AS cap;
SELECT is(octet_length(cart) || ' ' || octet_length(sess), '255 255', 'identifiers of exactly 255 bytes') FROM hs_255;
INSERT INTO checkout.inventory (sku, on_hand, unit_price) SELECT sku, 10, 100 FROM hs_255;
SELECT is(o.code, '00000', 'checkout_start takes a 255-byte cart_id, session_id, idempotency_key, sku and line_id')
FROM hs_255, LATERAL pg_temp.outcome(format('SELECT checkout_start(%L, %L, %L, NULL, %L)', cart, sess, pg_temp.line(line_id, sku), key)) o;
CREATE TEMP TABLE hs_255_lock AS SELECT l.lock_id FROM checkout.locks l, hs_255 h WHERE l.cart_id = h.cart;
SELECT is(o.code, '00000', 'a 255-byte authorisation reference is accepted')
FROM hs_255, hs_255_lock, LATERAL pg_temp.outcome(format('SELECT checkout_advance(%s, %L, %L, until => %L)',
     lock_id, sess, pg_temp.pay(auth, 100), 'payment_authorization')) o;
SELECT is(o.code, '00000', 'a 255-byte order_ref is accepted')
FROM hs_255, hs_255_lock, LATERAL pg_temp.outcome(format('SELECT checkout_advance(%s, %L, %L)',
     lock_id, sess, jsonb_build_object('order_ref', order_ref))) o;
SELECT is(o.code, '00000', 'a 255-byte capture reference is accepted')
FROM hs_255, hs_255_lock, LATERAL pg_temp.outcome(format('SELECT checkout_advance(%s, %L, %L, until => %L)',
     lock_id, sess, pg_temp.pay(cap, 100), 'stock_commit')) o;
SELECT is((SELECT s.state::text || ' ' || (s.order_ref = h.order_ref) FROM hs_255 h, hs_255_lock k,
           LATERAL checkout_status(k.lock_id, h.sess) s), 'completed true', '... and the checkout completes with that order_ref');
SELECT is((pg_temp.outcome(format('SELECT checkout_fail(%s, %L, %L)',
              (SELECT lock_id FROM checkout_start('hs-reason', 'hs', pg_temp.line('1', 'HS-A'))), 'hs', repeat('r', 1000)))).code,
          '00000', 'a reason of exactly 1000 bytes is accepted');

SELECT * FROM finish();
ROLLBACK;
