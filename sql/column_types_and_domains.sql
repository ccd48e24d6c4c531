-- Issue 19, finding 3: a DBA changes the type of a column the extension
-- fills: a length limit (varchar(n)), a numeric scale (numeric(p,s)), a
-- domain with a CHECK.  A checkout must store what an INSERT or UPDATE
-- statement would store (the value coerced to the column's type: rounded to
-- the scale) and refuse what it would refuse, with its SQLSTATE (22001 too
-- long, 23514 a domain's CHECK, 22003 numeric overflow), changing nothing.
-- The 0.2.0 direct path stored 30 characters in a varchar(8), a quantity of 7
-- in a domain limited to 1..5, and ignored a domain on orders.order_ref.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
SELECT pg_postmaster_start_time() AS server_started \gset
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('TD-A', 100, 301), ('TD-B', 100, 40);
-- (the domains in a schema of their own, so that messages name them the same
-- whatever the search_path; the monitoring views read two of these columns,
-- so a DBA drops them first; the extension is made again at the end)
CREATE SCHEMA td;
CREATE DOMAIN td.small_quantity AS bigint CHECK (VALUE BETWEEN 1 AND 5);
CREATE DOMAIN td.order_ref AS text CHECK (VALUE LIKE 'CO-_');
ALTER EXTENSION checkout DROP VIEW checkout.stats;
ALTER EXTENSION checkout DROP VIEW checkout.active_locks;
ALTER EXTENSION checkout DROP VIEW checkout.stuck_reservations;
DROP VIEW checkout.stats, checkout.active_locks, checkout.stuck_reservations;
ALTER TABLE checkout.lock_lines ALTER COLUMN line_id TYPE varchar(8);
ALTER TABLE checkout.lock_lines ALTER COLUMN quantity TYPE td.small_quantity;
ALTER TABLE checkout.reservations ALTER COLUMN quantity TYPE td.small_quantity;
ALTER TABLE checkout.orders ALTER COLUMN order_ref TYPE td.order_ref;
ALTER TABLE checkout.price_snapshots ALTER COLUMN drift_percent TYPE numeric(5,2);
ALTER TABLE checkout.price_snapshots ALTER COLUMN taken_at TYPE timestamptz(0);

SELECT table_name, direct,
       reason ~* '(type|domain|typmod|varchar|character varying|numeric|timestamp|line_id|quantity|order_ref|drift_percent|taken_at|td\.)' AS reason_names_it
FROM checkout_test.table_access()
WHERE table_name IN ('lock_lines', 'orders', 'price_snapshots', 'reservations');

-- 1. varchar(8): a line_id of 30 characters is too long (22001), one of 8
-- fits; nothing of the refused cart is written
SELECT count(*) AS locks_before FROM checkout.locks \gset
SELECT checkout_test.err(format('SELECT checkout_start(%L, %L, %L)', 'td-long', 'td',
       checkout_test.lines(checkout_test.line(repeat('L', 30), 'TD-B', 1, 40))));
SELECT count(*) = :locks_before AS no_new_lock, (SELECT count(*) FROM checkout.lock_lines) AS lines
FROM checkout.locks;
SELECT lock_id AS l1 FROM checkout_start('td-1', 'td',
       checkout_test.lines(checkout_test.line('12345678', 'TD-B', 2, 40))) \gset
SELECT line_id, length(line_id), quantity FROM checkout.lock_lines WHERE lock_id = :l1;

-- 2. the domain on quantity: 7 breaks its CHECK (23514, nothing written), 5 fits
SELECT checkout_test.err(format('SELECT checkout_start(%L, %L, %L)', 'td-seven', 'td',
       checkout_test.one_line('TD-B', 7, 40)));
SELECT count(*) AS locks_now FROM checkout.locks;
-- two lines of one sku, 3 + 4 units, are one reservation of 7: refused by the
-- domain on reservations.quantity (23514), nothing reserved
SELECT lock_id AS l2 FROM checkout_start('td-2', 'td',
       checkout_test.lines(checkout_test.line('1', 'TD-B', 3, 40), checkout_test.line('2', 'TD-B', 4, 40))) \gset
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, until => %L)', :l2, 'td', 'price_lock'));
SELECT phase, (SELECT reserved FROM checkout.inventory WHERE sku = 'TD-B') AS reserved,
       (SELECT count(*) FROM checkout.reservations WHERE lock_id = :l2) AS held
FROM checkout.locks WHERE lock_id = :l2;
SELECT state FROM checkout_cancel(:l2, 'td');

-- 3. numeric(5,2): the drift is stored rounded to two decimals, as SQL
-- stores it (1/301 of the price: 0.33 percent, within the tolerance), and
-- timestamptz(0): the time taken rounded to the second
SELECT lock_id AS l3 FROM checkout_start('td-3', 'td', checkout_test.one_line('TD-A', 1, 300)) \gset
SELECT state, phase, total FROM checkout_advance(:l3, 'td', until => 'price_lock');
SELECT line_id, cart_price, locked_price, drift_percent, scale(drift_percent) AS scale,
       extract(microseconds FROM taken_at)::bigint % 1000000 AS taken_at_fraction
FROM checkout.price_snapshots WHERE lock_id = :l3;
-- a drift of 30000 percent does not fit numeric(5,2) (22003), nothing written
SELECT lock_id AS l4 FROM checkout_start('td-4', 'td', checkout_test.one_line('TD-A', 1, 1)) \gset
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, until => %L)', :l4, 'td', 'price_lock'));
SELECT phase, (SELECT count(*) FROM checkout.price_snapshots WHERE lock_id = :l4) AS snapshots,
       (SELECT reserved FROM checkout.inventory WHERE sku = 'TD-A') AS reserved_a
FROM checkout.locks WHERE lock_id = :l4;
SELECT state FROM checkout_cancel(:l4, 'td');

-- 4. the domain on order_ref (CO- and one character): an application's
-- 'X-1' is refused (23514), the extension's own CO-<lock_id> is taken while
-- the lock id has one digit, and refused (23514) from lock 10 on
SELECT state, phase FROM checkout_advance(:l3, 'td', checkout_test.pay('a3', 301));
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L, %L)', :l3, 'td', '{"order_ref": "X-1"}'));
SELECT phase, (SELECT count(*) FROM checkout.orders) AS orders FROM checkout.locks WHERE lock_id = :l3;
SELECT state, phase, order_ref FROM checkout_advance(:l3, 'td', '{}', until => 'order_creation');
SELECT state, phase, order_ref FROM checkout_advance(:l3, 'td', checkout_test.pay('c3', 301), until => 'stock_commit');
SELECT order_ref, total, source, status FROM checkout.orders;
ALTER TABLE checkout.locks ALTER COLUMN lock_id RESTART WITH 10;
SELECT lock_id AS l10 FROM checkout_start('td-10', 'td', checkout_test.one_line('TD-B', 1, 40)) \gset
SELECT lock_id, state, phase FROM checkout_advance(:l10, 'td', checkout_test.pay('a10', 40), until => 'payment_authorization');
SELECT checkout_test.err(format('SELECT checkout_advance(%s, %L)', :l10, 'td'));
SELECT phase, (SELECT count(*) FROM checkout.orders WHERE lock_id = :l10) AS orders FROM checkout.locks WHERE lock_id = :l10;
SELECT state FROM checkout_cancel(:l10, 'td');

-- 5. varchar(20) on locks.error_message: checkout_fail's reason is stored
-- when it fits; a longer one is too long for the column (22001) and the lock
-- stays as it was
ALTER TABLE checkout.locks ALTER COLUMN error_message TYPE varchar(20);
SELECT table_name, direct, reason ~* '(type|typmod|varchar|character varying|error_message)' AS reason_names_it
FROM checkout_test.table_access() WHERE table_name = 'locks';
SELECT lock_id AS l5 FROM checkout_start('td-5', 'td', checkout_test.one_line('TD-B', 1, 40)) \gset
SELECT state, phase FROM checkout_advance(:l5, 'td', until => 'price_lock');
SELECT checkout_test.err(format('SELECT checkout_fail(%s, %L, %L)', :l5, 'td', 'card declined by the issuing bank'));
SELECT state, phase, error_message, (SELECT reserved FROM checkout.inventory WHERE sku = 'TD-B') AS reserved
FROM checkout.locks WHERE lock_id = :l5;
SELECT state, failed_phase, error_code, error_message FROM checkout_fail(:l5, 'td', 'card declined');
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;

-- the same refusals by plain SQL, for comparison
SELECT checkout_test.err(format($$INSERT INTO checkout.lock_lines VALUES (%s, 9, repeat('L', 30), 'TD-B', 1, 40)$$, :l1));
SELECT checkout_test.err(format($$INSERT INTO checkout.lock_lines VALUES (%s, 9, '9', 'TD-B', 7, 40)$$, :l1));
SELECT checkout_test.err($$UPDATE checkout.orders SET order_ref = 'X-1'$$);
SELECT checkout_test.err(format($$UPDATE checkout.locks SET error_message = 'card declined by the issuing bank' WHERE lock_id = %s$$, :l5));
SELECT checkout_test.err($$UPDATE checkout.price_snapshots SET drift_percent = 30000$$);
SELECT checkout_test.err(format($$INSERT INTO checkout.reservations (lock_id, sku, quantity) VALUES (%s, 'TD-B', 7)$$, :l5));

SELECT * FROM checkout_verify();
SELECT pg_postmaster_start_time() = :'server_started' AS server_not_restarted;

-- the tables as the extension made them, for the tests after this one
DROP EXTENSION checkout;
DROP SCHEMA td CASCADE;
CREATE EXTENSION checkout;
