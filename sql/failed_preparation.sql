-- Issue 19, finding 9: a CHECK constraint whose preparation fails (a NOT
-- VALID constraint whose constant part divides by zero: planning folds it and
-- raises 22012).  Every write to the table fails with that error, as a
-- statement's does, and the backend's memory must not grow with the number of
-- failed calls: the 0.2.0 direct path left a memory context under
-- TopMemoryContext behind each time (200 calls, 200 contexts).
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
SELECT pg_postmaster_start_time() AS server_started \gset
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('FP-A', 10, 100);
ALTER TABLE checkout.lock_lines ADD CONSTRAINT fp_broken CHECK (quantity > 0 OR 1 / 0 = 1) NOT VALID;
ALTER TABLE checkout.inventory ADD CONSTRAINT fp_broken CHECK (reserved >= 0 OR 1 / 0 = 1) NOT VALID;

-- the statement's own answer, for comparison
SELECT checkout_test.err($$INSERT INTO checkout.lock_lines VALUES (1, 1, '1', 'FP-A', 1, 100)$$);
SELECT checkout_test.err($$UPDATE checkout.inventory SET reserved = 1$$);

-- 1. twenty starts, each failing on lock_lines with 22012, then the
-- backend's memory: every cache a call fills is warm by now
SELECT checkout_test.err(format('SELECT checkout_start(%L, %L, %L)', 'fp-' || g, 'fp',
       checkout_test.one_line('FP-A', 1, 100))) AS error, count(*)
FROM generate_series(1, 20) g GROUP BY 1;
SELECT count(*) AS contexts_20, sum(total_bytes) AS bytes_20 FROM pg_backend_memory_contexts \gset

-- 2. 180 more: the same error each time, and the memory as it was after 20
-- (a context or two and 64 kB of slack for what the allocator keeps; a
-- context left per call would be 180 contexts, at least 180 kB)
SELECT checkout_test.err(format('SELECT checkout_start(%L, %L, %L)', 'fp-' || g, 'fp',
       checkout_test.one_line('FP-A', 1, 100))) AS error, count(*)
FROM generate_series(21, 200) g GROUP BY 1;
SELECT count(*) - :contexts_20 <= 2 AS contexts_flat, sum(total_bytes) - :bytes_20 < 65536 AS bytes_flat
FROM pg_backend_memory_contexts;
SELECT count(*) AS locks, (SELECT count(*) FROM checkout.lock_lines) AS lines FROM checkout.locks;

-- 3. the same for the reservation (the ledger's update), 200 times
ALTER TABLE checkout.lock_lines DROP CONSTRAINT fp_broken;
SELECT lock_id AS l FROM checkout_start('fp-x', 'fp', checkout_test.one_line('FP-A', 1, 100)) \gset
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, until => %L)', :l, 'fp', 'price_lock')) AS error, count(*)
FROM generate_series(1, 20) g GROUP BY 1;
SELECT count(*) AS contexts_20, sum(total_bytes) AS bytes_20 FROM pg_backend_memory_contexts \gset
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, until => %L)', :l, 'fp', 'price_lock')) AS error, count(*)
FROM generate_series(21, 200) g GROUP BY 1;
SELECT count(*) - :contexts_20 <= 2 AS contexts_flat, sum(total_bytes) - :bytes_20 < 65536 AS bytes_flat
FROM pg_backend_memory_contexts;
SELECT phase, (SELECT reserved FROM checkout.inventory) AS reserved, (SELECT count(*) FROM checkout.reservations) AS held
FROM checkout.locks WHERE lock_id = :l;

-- 4. the constraint dropped, the lock goes on
ALTER TABLE checkout.inventory DROP CONSTRAINT fp_broken;
SELECT state, phase FROM checkout_advance(:l, 'fp', until => 'price_lock');
SELECT state FROM checkout_cancel(:l, 'fp');
SELECT * FROM checkout_verify();
SELECT pg_postmaster_start_time() = :'server_started' AS server_not_restarted;

-- the tables as the extension made them, for the tests after this one
DROP EXTENSION checkout;
CREATE EXTENSION checkout;
