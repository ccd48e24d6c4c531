-- Issue 19, finding 2: a CHECK constraint over the whole row
-- (row_to_json(inventory)).  Its compiled expression caches the row's
-- descriptor in per-query memory; the 0.2.0 direct path kept the compiled
-- constraint beyond the query that built it, so the 4th write in one backend
-- failed with XX000 "tuple descriptor ... lacks attribute".  Many checkouts in
-- one session must pass as SQL passes them, and a row that breaks such a
-- constraint must be refused as SQL refuses it (23514), changing nothing.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
SELECT pg_postmaster_start_time() AS server_started \gset
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('WR-A', 100, 100), ('WR-B', 100, 40);
ALTER TABLE checkout.inventory ADD CONSTRAINT c CHECK (length(row_to_json(inventory)::text) < 1000);
ALTER TABLE checkout.inventory ADD CONSTRAINT wr_reserved_at_most_50
    CHECK ((row_to_json(inventory) ->> 'reserved')::bigint <= 50);
ALTER TABLE checkout.reservations ADD CONSTRAINT wr_reservation_json
    CHECK ((to_jsonb(reservations) ->> 'quantity')::bigint <= 40);
ALTER TABLE checkout.lock_lines ADD CONSTRAINT wr_line_json
    CHECK (length(row_to_json(lock_lines)::text) < 200);

-- user constraints take the tables off the direct path
SELECT table_name, direct, reason ~* '(constraint|check|\mc\M|wr_)' AS reason_names_it
FROM checkout_test.table_access() WHERE table_name IN ('inventory', 'reservations', 'lock_lines');

-- 1. twelve whole checkouts of two skus in this one session, and a cancel
-- after each reservation of a third cart: every one as SQL would run it
CREATE TEMP TABLE wr_runs AS
SELECT n, s.state::text, s.phase::text, s.order_ref, c.state::text AS cancelled
FROM generate_series(1, 12) n
CROSS JOIN LATERAL (SELECT lock_id FROM checkout_start('wr-' || n, 'wr',
       checkout_test.lines(checkout_test.line('1', 'WR-A', 1, 100), checkout_test.line('2', 'WR-B', 2, 40)))) l
CROSS JOIN LATERAL (SELECT lock_id AS k FROM checkout_start('wr-cancel-' || n, 'wr',
       checkout_test.one_line('WR-B', 1, 40))) k
CROSS JOIN LATERAL (SELECT * FROM checkout_advance(k.k, 'wr', until => 'inventory_reservation')) r
CROSS JOIN LATERAL (SELECT * FROM checkout_advance(l.lock_id, 'wr', until => 'price_lock')) p
CROSS JOIN LATERAL (SELECT * FROM checkout_advance(l.lock_id, 'wr', checkout_test.pay('a' || n, 180),
       until => 'order_creation')) o
CROSS JOIN LATERAL (SELECT * FROM checkout_advance(l.lock_id, 'wr', checkout_test.pay('c' || n, 180),
       until => 'stock_commit')) s
CROSS JOIN LATERAL (SELECT * FROM checkout_cancel(k.k, 'wr')) c;
SELECT state, phase, cancelled, count(*) FROM wr_runs GROUP BY 1, 2, 3;
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
SELECT count(*) AS orders, sum(total) AS sold FROM checkout.orders WHERE status = 'created';
SELECT count(*) AS held FROM checkout.reservations;
DROP TABLE wr_runs;

-- 2. the same again, one statement per call (each a write of its own)
SELECT lock_id AS l FROM checkout_start('wr-x', 'wr', checkout_test.one_line('WR-A', 2, 100)) \gset
SELECT state, phase FROM checkout_advance(:l, 'wr', until => 'inventory_reservation');
SELECT state, phase FROM checkout_advance(:l, 'wr', until => 'price_lock');
SELECT state, phase FROM checkout_advance(:l, 'wr', checkout_test.pay('ax', 200));
SELECT state, phase FROM checkout_advance(:l, 'wr', '{}', until => 'order_creation');
SELECT state, phase FROM checkout_advance(:l, 'wr', checkout_test.pay('cx', 200));
SELECT state, phase FROM checkout_advance(:l, 'wr');

-- 3. refused as SQL refuses the row: the ledger's reserved would pass 50
-- (23514 on inventory), a reservation above 40 units (23514 on
-- reservations), a line too long for its constraint (23514 on lock_lines);
-- each call changes nothing
SELECT lock_id AS big FROM checkout_start('wr-big', 'wr', checkout_test.one_line('WR-A', 60, 100)) \gset
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, until => %L)', :big, 'wr', 'price_lock'));
SELECT lock_id AS mid FROM checkout_start('wr-mid', 'wr', checkout_test.one_line('WR-B', 45, 40)) \gset
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, until => %L)', :mid, 'wr', 'price_lock'));
SELECT state, phase FROM checkout.locks WHERE lock_id IN (:big, :mid) ORDER BY lock_id;
SELECT count(*) AS held FROM checkout.reservations;
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
SELECT count(*) AS locks_before FROM checkout.locks \gset
SELECT checkout_test.err(format('SELECT checkout_start(%L, %L, %L)', 'wr-long', 'wr',
       checkout_test.one_line(repeat('W', 150), 1, 100)));
SELECT count(*) = :locks_before AS no_new_lock FROM checkout.locks;

-- 4. the refused reservation goes through once its constraint is dropped
SELECT state FROM checkout_cancel(:big, 'wr');
ALTER TABLE checkout.reservations DROP CONSTRAINT wr_reservation_json;
SELECT state, phase FROM checkout_advance(:mid, 'wr', until => 'price_lock');
SELECT state FROM checkout_cancel(:mid, 'wr');
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;
SELECT * FROM checkout_verify();
SELECT pg_postmaster_start_time() = :'server_started' AS server_not_restarted;

-- the tables as the extension made them, for the tests after this one
DROP EXTENSION checkout;
CREATE EXTENSION checkout;
