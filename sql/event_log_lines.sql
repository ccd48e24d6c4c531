-- Structured log lines: every event's `[checkout] <event> {json}` line, exactly.
-- LOG lines reach this client with client_min_messages = log; they are written
-- when the transaction commits, so in autocommit they follow each statement
-- and inside BEGIN ... COMMIT they all appear at COMMIT.  Durations are
-- exact because each story runs in one transaction (one now()), or has its
-- created_at set by hand.  "started" and "extended" carry an expires_at that
-- changes every run, so ev_start() sends them to the events table instead,
-- where they are checked without it (test/t/050_events_log_and_notify.pl
-- reads them in the server log).
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
CALL checkout_test.reset(7001);
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('EV-A', 10, 1000), ('EV-B', 5, 250);
CREATE FUNCTION ev_start(cart text, lines jsonb) RETURNS bigint LANGUAGE sql
    SET checkout.log_destination = 'table'
    AS $$ SELECT lock_id FROM checkout_start(cart, 'ev', lines) $$;
CREATE ROLE ev_admin NOLOGIN IN ROLE checkout_admin;
SET checkout.log_events = 'all';
SET checkout.log_destination = 'server_log';
SET client_min_messages = log;

-- 7001: the happy path in one transaction (every line at COMMIT), with a
-- price-drift warning (EV-B was 251 in the cart, is 250: 0.3984 %)
BEGIN;
SELECT state, phase, total FROM checkout_advance(ev_start('ev-ok',
  '[{"line_id":"1","sku":"EV-A","quantity":2,"unit_price":1000},{"line_id":"2","sku":"EV-B","quantity":1,"unit_price":251}]'),
  'ev', until => 'price_lock');
SELECT state, phase FROM checkout_advance(7001, 'ev', checkout_test.pay('auth-1', 2250));
SELECT state, phase, order_ref FROM checkout_advance(7001, 'ev', checkout_test.pay('cap-1', 2250), until => 'stock_commit');
COMMIT;
SELECT event, detail - 'expires_at' AS detail, detail ? 'expires_at' AS has_expires_at
FROM checkout.events WHERE lock_id = 7001;

-- 7002: unknown sku (KC010) fails cart_validation: nothing to roll back
SELECT state, failed_phase, error_code FROM checkout_advance(ev_start('ev-unknown',
  '[{"line_id":"1","sku":"EV-NOPE","quantity":1,"unit_price":1}]'), 'ev');
-- 7003: shortfall (KC011) fails inventory_reservation, nothing was reserved
SELECT state, failed_phase, error_code FROM checkout_advance(ev_start('ev-short',
  '[{"line_id":"1","sku":"EV-B","quantity":9,"unit_price":250}]'), 'ev', until => 'price_lock');
-- 7004: drift above tolerance (KC012): the reservation is released
SELECT state, failed_phase, error_code FROM checkout_advance(ev_start('ev-drift',
  '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":900}]'), 'ev', until => 'price_lock');
-- 7005: authorisation of the wrong amount (KC013): the refused authorisation must be voided
SELECT state, failed_phase, error_code FROM checkout_advance((checkout_advance(ev_start('ev-auth',
  '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev', until => 'price_lock')).lock_id,
  'ev', checkout_test.pay('auth-5', 999));
-- 7006: capture of the wrong amount (KC013): refund the refused capture, void
-- the authorisation, cancel the order, release the stock
SELECT state, failed_phase, error_code FROM checkout_advance((checkout_advance(ev_start('ev-capture',
  '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev', checkout_test.pay('auth-6', 1000), until => 'order_creation')).lock_id,
  'ev', checkout_test.pay('cap-6', 1001));
-- 7007: the application reports a failure (KC014) after the order was created
SELECT state, failed_phase, error_code FROM checkout_fail((checkout_advance(ev_start('ev-app-fail',
  '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev', checkout_test.pay('auth-7', 1000), until => 'order_creation')).lock_id,
  'ev', 'card declined');
-- 7008: cancelled by the customer after the price lock
SELECT state FROM checkout_cancel((checkout_advance(ev_start('ev-cancel',
  '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev', until => 'price_lock')).lock_id, 'ev');
-- 7009: released by an admin after payment capture: the capture is refunded
-- (in one transaction, so that its duration is exactly 0.000 s)
BEGIN;
SELECT state, phase FROM checkout_advance((checkout_advance(ev_start('ev-release',
  '[{"line_id":"1","sku":"EV-B","quantity":2,"unit_price":250}]'), 'ev', checkout_test.pay('auth-9', 500), until => 'order_creation')).lock_id,
  'ev', checkout_test.pay('cap-9', 500), until => 'payment_capture');
SET ROLE ev_admin;
SELECT state, error_message FROM checkout_release(7009, 'customer called');
RESET ROLE;
COMMIT;

-- 7010: expired on touch, 20 minutes after it started (duration 1200 s); made
-- overdue in the same transaction, so that no sweeper can get there first
SET client_min_messages = warning;
SELECT state FROM checkout_advance(ev_start('ev-expire',
  '[{"line_id":"1","sku":"EV-A","quantity":2,"unit_price":1000}]'), 'ev', checkout_test.pay('auth-10', 2000), until => 'payment_authorization');
SET client_min_messages = log;
BEGIN;
UPDATE checkout.locks SET created_at = now() - interval '20 minutes', expires_at = now() - interval '5 minutes'
WHERE lock_id = 7010;
SELECT state, failed_phase, error_code FROM checkout_advance(7010, 'ev');
COMMIT;
-- 7011: captured, then abandoned: expiry rolls forward to completed
SET client_min_messages = warning;
SELECT state FROM checkout_advance(ev_start('ev-paid',
  '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev', checkout_test.pay('auth-11', 1000), until => 'order_creation');
SELECT state FROM checkout_advance(7011, 'ev', checkout_test.pay('cap-11', 1000), until => 'payment_capture');
SET client_min_messages = log;
BEGIN;
UPDATE checkout.locks SET created_at = now() - interval '20 minutes', expires_at = now() - interval '5 minutes'
WHERE lock_id = 7011;
SELECT state, phase FROM checkout_advance(7011, 'ev');
COMMIT;

-- user data is escaped: quotes, a backslash and a newline stay inside one line
SELECT state FROM checkout_cancel(ev_start(E'ev-"odd"\\cart\nline2',
  '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev');

-- nothing is logged for work that did not commit
BEGIN;
SELECT state FROM checkout_cancel(ev_start('ev-rolled-back',
  '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev');
ROLLBACK;
BEGIN;
SELECT state FROM checkout_cancel(ev_start('ev-aborted',
  '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev');
SELECT 1 / 0;
COMMIT;

-- categories: the default set leaves out phases and stock ...
RESET checkout.log_events;
SHOW checkout.log_events;
SELECT state FROM checkout_cancel((checkout_advance(ev_start('ev-default',
  '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev', until => 'price_lock')).lock_id, 'ev');
-- ... one category alone ...
SET checkout.log_events = 'stock';
SELECT state FROM checkout_cancel((checkout_advance(ev_start('ev-stock',
  '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev', until => 'inventory_reservation')).lock_id, 'ev');
SET checkout.log_events = 'failures, price_drift';
SELECT state FROM checkout_cancel((checkout_advance(ev_start('ev-drift-only',
  '[{"line_id":"1","sku":"EV-B","quantity":1,"unit_price":251}]'), 'ev', until => 'price_lock')).lock_id, 'ev');
SELECT state, error_code FROM checkout_advance(ev_start('ev-failures',
  '[{"line_id":"1","sku":"EV-A","quantity":99,"unit_price":1000}]'), 'ev', until => 'price_lock');
-- ... none, or logging off, logs nothing
SET checkout.log_events = 'none';
SELECT state FROM checkout_cancel(ev_start('ev-none', '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev');
SET checkout.log_events = 'all';
SET checkout.logging = off;
SELECT state FROM checkout_cancel(ev_start('ev-off', '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev');
RESET checkout.logging;
SET checkout.log_events = 'lifecycle, bogus';
SET checkout.log_destination = 'syslog';

-- both: a line and a row
SET checkout.log_destination = 'both';
SET checkout.log_events = 'lifecycle';
SELECT state FROM checkout_cancel(ev_start('ev-both', '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev');
SELECT event, detail - 'expires_at' AS detail FROM checkout.events WHERE cart_id = 'ev-both' ORDER BY event_id;

-- "extended" (to the table: its expires_at changes every run)
SET checkout.log_destination = 'table';
SELECT state FROM checkout_extend(ev_start('ev-extend', '[{"line_id":"1","sku":"EV-A","quantity":1,"unit_price":1000}]'), 'ev', interval '5 minutes');
SELECT event, detail - 'expires_at' AS detail,
       CASE WHEN event = 'extended' THEN (detail->>'expires_at')::timestamptz = l.expires_at END AS new_expires_at
FROM checkout.events e JOIN checkout.locks l USING (lock_id) WHERE e.cart_id = 'ev-extend' ORDER BY e.event_id;

SET client_min_messages = warning;
RESET checkout.log_events;
RESET checkout.log_destination;
SELECT state FROM checkout_cancel((SELECT lock_id FROM checkout.locks WHERE cart_id = 'ev-extend'), 'ev');
SELECT count(*) AS leftover_active FROM checkout.locks WHERE cart_id LIKE 'ev-%' AND state = 'active';
SELECT sku, on_hand, reserved FROM checkout.inventory WHERE sku LIKE 'EV-%' ORDER BY sku;
DROP ROLE ev_admin;
