-- Issue 19: the direct path is only allowed where it gives what SQL gives.
-- One mixed workload (whole checkouts, business failures of each kind,
-- cancels, checkout_fail, expiry by checkout_cleanup_expired, expiry on
-- touch, a rollback after the capture, the roll-forward of an overdue
-- captured lock, extend, idempotency, release) replayed from the same
-- starting state (same stock, lock ids from 1) once with
-- checkout.direct_access on and once off.  Every status row the calls
-- returned and every row of every table of schema checkout (the event log
-- too) is compared, timestamps masked: EXCEPT ALL both ways finds nothing.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SELECT pg_postmaster_start_time() AS server_started \gset
SET checkout.log_destination = 'table';
SET checkout.log_events = 'all';
SET checkout.price_drift_tolerance = 1;

CREATE TABLE dm_calls (run text, step int, call text, result jsonb);
CREATE TABLE dm_rows (run text, tbl text, row_data jsonb);

-- the workload; each step a transaction of its own (COMMIT), as an
-- application's calls would be
CREATE PROCEDURE dm_workload(run text)
LANGUAGE plpgsql AS $$
DECLARE
    step int := 0;
    l1 bigint; l2 bigint; l3 bigint; l4 bigint; l5 bigint; l6 bigint; l7 bigint; l8 bigint;
    l9 bigint; l10 bigint; l11 bigint; l12 bigint; l13 bigint; l14 bigint; l15 bigint; l16 bigint;
BEGIN
    -- the same start: lock ids from 1, the same stock
    CALL checkout_test.reset();
    INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES
        ('DM-A', 20, 100), ('DM-B', 10, 250), ('DM-C', 5, 1000), ('DM-D', 3, 40);
    COMMIT;
    -- 1. whole checkout of two skus, two lines of one of them
    l1 := (checkout_start('dm-1', 's', checkout_test.lines(checkout_test.line('1', 'DM-A', 2, 100),
           checkout_test.line('2', 'DM-B', 1, 250), checkout_test.line('3', 'DM-A', 1, 100)))).lock_id;
    INSERT INTO dm_calls SELECT run, 1, 'advance price_lock', to_jsonb(s) - 'expires_at' FROM checkout_advance(l1, 's', until => 'price_lock') s;
    COMMIT;
    INSERT INTO dm_calls SELECT run, 2, 'advance auth', to_jsonb(s) - 'expires_at' FROM checkout_advance(l1, 's', checkout_test.pay('a1', 550)) s;
    INSERT INTO dm_calls SELECT run, 3, 'advance order', to_jsonb(s) - 'expires_at' FROM checkout_advance(l1, 's') s;
    COMMIT;
    INSERT INTO dm_calls SELECT run, 4, 'advance capture..commit', to_jsonb(s) - 'expires_at'
    FROM checkout_advance(l1, 's', checkout_test.pay('c1', 550), until => 'stock_commit') s;
    -- the same capture reported again: nothing runs twice
    INSERT INTO dm_calls SELECT run, 5, 'capture again', to_jsonb(s) - 'expires_at'
    FROM checkout_advance(l1, 's', checkout_test.pay('c1', 550), until => 'payment_capture') s;
    COMMIT;

    -- 2. the application's own order_ref and payment metadata
    l2 := (checkout_start('dm-2', 's', checkout_test.one_line('DM-C', 1, 1000))).lock_id;
    INSERT INTO dm_calls SELECT run, 6, 'advance with metadata', to_jsonb(s) - 'expires_at'
    FROM checkout_advance(l2, 's', '{"reference":"a2","amount":1000,"metadata":{"card":"visa"},"order_ref":"APP-2"}',
                          until => 'order_creation') s;
    INSERT INTO dm_calls SELECT run, 7, 'capture..commit', to_jsonb(s) - 'expires_at'
    FROM checkout_advance(l2, 's', '{"reference":"c2","amount":1000,"metadata":{"capture":"ok"}}', until => 'stock_commit') s;
    COMMIT;

    -- 3. business failures: unknown sku, shortfall, drift, amount mismatch
    -- at authorisation and at capture (after the order)
    l3 := (checkout_start('dm-3', 's', checkout_test.lines(checkout_test.line('1', 'DM-A', 1, 100),
           checkout_test.line('2', 'DM-NOPE', 1, 5)))).lock_id;
    INSERT INTO dm_calls SELECT run, 8, 'unknown sku', to_jsonb(s) - 'expires_at' FROM checkout_advance(l3, 's', until => 'price_lock') s;
    l4 := (checkout_start('dm-4', 's', checkout_test.lines(checkout_test.line('1', 'DM-A', 1, 100),
           checkout_test.line('2', 'DM-D', 4, 40)))).lock_id;
    INSERT INTO dm_calls SELECT run, 9, 'shortfall', to_jsonb(s) - 'expires_at' FROM checkout_advance(l4, 's', until => 'price_lock') s;
    COMMIT;
    l5 := (checkout_start('dm-5', 's', checkout_test.lines(checkout_test.line('1', 'DM-B', 1, 250),
           checkout_test.line('2', 'DM-A', 2, 90)))).lock_id;
    INSERT INTO dm_calls SELECT run, 10, 'drift', to_jsonb(s) - 'expires_at' FROM checkout_advance(l5, 's', until => 'price_lock') s;
    -- a drift within the tolerance: a warning, the price locked at today's
    l6 := (checkout_start('dm-6', 's', checkout_test.one_line('DM-C', 1, 995))).lock_id;
    INSERT INTO dm_calls SELECT run, 11, 'small drift', to_jsonb(s) - 'expires_at' FROM checkout_advance(l6, 's', until => 'price_lock') s;
    INSERT INTO dm_calls SELECT run, 12, 'auth mismatch', to_jsonb(s) - 'expires_at' FROM checkout_advance(l6, 's', checkout_test.pay('a6', 995)) s;
    COMMIT;
    l7 := (checkout_start('dm-7', 's', checkout_test.one_line('DM-B', 2, 250))).lock_id;
    INSERT INTO dm_calls SELECT run, 13, 'to order', to_jsonb(s) - 'expires_at'
    FROM checkout_advance(l7, 's', checkout_test.pay('a7', 500), until => 'order_creation') s;
    INSERT INTO dm_calls SELECT run, 14, 'capture mismatch', to_jsonb(s) - 'expires_at' FROM checkout_advance(l7, 's', checkout_test.pay('c7', 499)) s;
    COMMIT;

    -- 4. cancels (after the reservation, after the order), checkout_fail
    -- after the authorisation, and after the capture (a refund)
    l8 := (checkout_start('dm-8', 's', checkout_test.one_line('DM-A', 3, 100))).lock_id;
    PERFORM checkout_advance(l8, 's', until => 'inventory_reservation');
    INSERT INTO dm_calls SELECT run, 15, 'cancel reserved', to_jsonb(s) - 'expires_at' FROM checkout_cancel(l8, 's') s;
    l9 := (checkout_start('dm-9', 's', checkout_test.one_line('DM-A', 1, 100))).lock_id;
    PERFORM checkout_advance(l9, 's', checkout_test.pay('a9', 100), until => 'order_creation');
    INSERT INTO dm_calls SELECT run, 16, 'cancel ordered', to_jsonb(s) - 'expires_at' FROM checkout_cancel(l9, 's') s;
    COMMIT;
    l10 := (checkout_start('dm-10', 's', checkout_test.one_line('DM-B', 1, 250))).lock_id;
    PERFORM checkout_advance(l10, 's', checkout_test.pay('a10', 250), until => 'payment_authorization');
    INSERT INTO dm_calls SELECT run, 17, 'fail authorised', to_jsonb(s) - 'expires_at' FROM checkout_fail(l10, 's', 'card declined') s;
    l11 := (checkout_start('dm-11', 's', checkout_test.one_line('DM-A', 2, 100))).lock_id;
    PERFORM checkout_advance(l11, 's', checkout_test.pay('a11', 200), until => 'order_creation');
    PERFORM checkout_advance(l11, 's', checkout_test.pay('c11', 200), until => 'payment_capture');
    INSERT INTO dm_calls SELECT run, 18, 'fail captured', to_jsonb(s) - 'expires_at' FROM checkout_fail(l11, 's', 'fraud suspected') s;
    COMMIT;

    -- 5. expiry: an overdue reserved lock and an overdue priced lock swept by
    -- checkout_cleanup_expired, an overdue captured lock rolled forward, an
    -- overdue lock expired on touch
    l12 := (checkout_start('dm-12', 's', checkout_test.one_line('DM-C', 1, 1000))).lock_id;
    PERFORM checkout_advance(l12, 's', until => 'inventory_reservation');
    l13 := (checkout_start('dm-13', 's', checkout_test.one_line('DM-B', 1, 250))).lock_id;
    PERFORM checkout_advance(l13, 's', until => 'price_lock');
    l14 := (checkout_start('dm-14', 's', checkout_test.one_line('DM-A', 1, 100))).lock_id;
    PERFORM checkout_advance(l14, 's', checkout_test.pay('a14', 100), until => 'order_creation');
    PERFORM checkout_advance(l14, 's', checkout_test.pay('c14', 100), until => 'payment_capture');
    COMMIT;
    CALL checkout_test.make_overdue(l12);
    CALL checkout_test.make_overdue(l13);
    CALL checkout_test.make_overdue(l14);
    INSERT INTO dm_calls SELECT run, 19, 'cleanup', to_jsonb(checkout_cleanup_expired(10));
    COMMIT;
    l15 := (checkout_start('dm-15', 's', checkout_test.one_line('DM-C', 1, 1000))).lock_id;
    PERFORM checkout_advance(l15, 's', until => 'price_lock');
    COMMIT;
    CALL checkout_test.make_overdue(l15);
    INSERT INTO dm_calls SELECT run, 20, 'touch overdue', to_jsonb(s) - 'expires_at' FROM checkout_advance(l15, 's', checkout_test.pay('a15', 1000)) s;
    COMMIT;

    -- 6. extend, idempotency, the same cart again, release
    l16 := (checkout_start('dm-16', 's', checkout_test.one_line('DM-A', 1, 100), interval '5 minutes', 'key-16')).lock_id;
    INSERT INTO dm_calls SELECT run, 21, 'extend', to_jsonb(s) - 'expires_at' FROM checkout_extend(l16, 's', interval '10 minutes') s;
    INSERT INTO dm_calls SELECT run, 22, 'same key', to_jsonb(s) - 'expires_at'
    FROM checkout_start('dm-16', 's', checkout_test.one_line('DM-A', 1, 100), NULL, 'key-16') s;
    INSERT INTO dm_calls SELECT run, 23, 'status', to_jsonb(s) - 'expires_at' FROM checkout_status(l16, 's') s;
    PERFORM checkout_advance(l16, 's', until => 'price_lock');
    COMMIT;
    INSERT INTO dm_calls SELECT run, 24, 'release', to_jsonb(s) - 'expires_at' FROM checkout_release(l16, 'support ticket 16') s;
    INSERT INTO dm_calls SELECT run, 25, 'after release', to_jsonb(s) - 'expires_at'
    FROM checkout_start('dm-16', 's', checkout_test.one_line('DM-A', 1, 100)) s;
    -- left holding its stock, so that the final state has reservations too
    INSERT INTO dm_calls SELECT run, 27, 'left reserved', to_jsonb(s) - 'expires_at'
    FROM checkout_advance((SELECT lock_id FROM checkout.locks WHERE cart_id = 'dm-16' AND state = 'active'), 's',
                          until => 'price_lock') s;
    -- errors, each a SQLSTATE and message
    INSERT INTO dm_calls SELECT run, 26, 'errors', to_jsonb(ARRAY[
        checkout_test.err(format('SELECT checkout_advance(%s, %L)', l1, 's')),
        checkout_test.err(format('SELECT checkout_status(%s, %L)', l2, 'intruder')),
        checkout_test.err(format('SELECT checkout_cancel(%s, %L)', l12, 's')),
        checkout_test.err(format('SELECT checkout_start(%L, %L, %L)', 'dm-16', 'intruder', checkout_test.one_line('DM-A', 1, 100)))]);
    COMMIT;
END
$$;

-- every row of every table of schema checkout, its timestamps left out
CREATE PROCEDURE dm_snapshot(run text)
LANGUAGE plpgsql AS $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT c.oid::regclass AS rel, c.relname,
                    coalesce(array_agg(a.attname::text) FILTER (WHERE a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype)),
                             '{}') AS times
             FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE c.relnamespace = 'checkout'::regnamespace AND c.relkind = 'r'
             GROUP BY c.oid, c.relname
    LOOP
        EXECUTE format('INSERT INTO dm_rows SELECT %L, %L, to_jsonb(t) - %L::text[] FROM %s t',
                       run, t.relname, t.times, t.rel);
    END LOOP;
    -- the event log's details carry times too
    UPDATE dm_rows SET row_data = jsonb_set(row_data, '{detail}',
                                            (row_data -> 'detail') - '{expires_at,duration_seconds,created_at,taken_at,age_seconds}'::text[])
    WHERE dm_rows.run = dm_snapshot.run AND dm_rows.tbl = 'events';
END
$$;

-- the two runs, from the same start
SET checkout.direct_access = on;
SELECT bool_and(direct) AS every_table_direct FROM checkout.table_access();
CALL dm_workload('direct');
CALL dm_snapshot('direct');
SET checkout.direct_access = off;
SELECT bool_or(direct) AS any_table_direct FROM checkout.table_access();
CALL dm_workload('sql');
CALL dm_snapshot('sql');
RESET checkout.direct_access;

-- what the workload left (the same both ways), then the differences: none
SELECT tbl, count(*) FILTER (WHERE run = 'direct') AS direct_rows, count(*) FILTER (WHERE run = 'sql') AS sql_rows
FROM dm_rows GROUP BY tbl ORDER BY tbl;
SELECT count(*) FILTER (WHERE run = 'direct') AS direct_calls, count(*) FILTER (WHERE run = 'sql') AS sql_calls FROM dm_calls;
SELECT d.step, d.call, d.result->>'state' AS state, d.result->>'phase' AS phase, d.result->>'error_code' AS error_code
FROM dm_calls d WHERE run = 'sql' AND jsonb_typeof(d.result) = 'object' ORDER BY step;
SELECT result AS cleaned_up FROM dm_calls WHERE run = 'sql' AND step = 19;
SELECT jsonb_array_elements_text(result) AS errors FROM dm_calls WHERE run = 'sql' AND step = 26;
(SELECT 'only direct' AS side, tbl, row_data FROM dm_rows WHERE run = 'direct'
 EXCEPT ALL SELECT 'only direct', tbl, row_data FROM dm_rows WHERE run = 'sql')
UNION ALL
(SELECT 'only sql', tbl, row_data FROM dm_rows WHERE run = 'sql'
 EXCEPT ALL SELECT 'only sql', tbl, row_data FROM dm_rows WHERE run = 'direct')
ORDER BY 1, 2, 3;
(SELECT 'only direct' AS side, step, call, result FROM dm_calls WHERE run = 'direct'
 EXCEPT ALL SELECT 'only direct', step, call, result FROM dm_calls WHERE run = 'sql')
UNION ALL
(SELECT 'only sql', step, call, result FROM dm_calls WHERE run = 'sql'
 EXCEPT ALL SELECT 'only sql', step, call, result FROM dm_calls WHERE run = 'direct')
ORDER BY 1, 2;
SELECT * FROM checkout_verify();
SELECT pg_postmaster_start_time() = :'server_started' AS server_not_restarted;

DROP PROCEDURE dm_workload(text);
DROP PROCEDURE dm_snapshot(text);
DROP TABLE dm_calls, dm_rows;
