-- What this call did (0.3.0): the status row's created, phases_run and ended,
-- so that a retry (a second webhook, a double click) can be told from the
-- call that did the work, whatever the state it returns.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;

INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('CR-A', 10, 1000);

-- start: created by the first call, found by the re-entry and by the idempotency key
SELECT lock_id AS lock, created, phases_run, ended
FROM checkout_start('cr-1', 'cr-s', checkout_test.one_line('CR-A', 1, 1000), idempotency_key => 'k1') \gset
SELECT :'created' AS created, :'phases_run' AS phases_run, :'ended' AS ended;
SELECT lock_id = :lock AS same, created, phases_run, ended
FROM checkout_start('cr-1', 'cr-s', checkout_test.one_line('CR-A', 1, 1000));
SELECT lock_id = :lock AS same, created, phases_run, ended
FROM checkout_start('cr-1', 'cr-s', checkout_test.one_line('CR-A', 1, 1000), idempotency_key => 'k1');

-- advance: the phases it completed, in order; a repeated until runs nothing
SELECT phase, created, phases_run, ended FROM checkout_advance(:lock, 'cr-s', until => 'price_lock');
SELECT phase, created, phases_run, ended FROM checkout_advance(:lock, 'cr-s', until => 'price_lock');
SELECT phase, phases_run FROM checkout_advance(:lock, 'cr-s', checkout_test.pay('auth-1', 1000), until => 'order_creation');
-- the capture webhook and the browser report the same capture: one did the work
SELECT state, phase, phases_run, ended
FROM checkout_advance(:lock, 'cr-s', checkout_test.pay('cap-1', 1000), until => 'stock_commit');
SELECT state, phase, phases_run, ended
FROM checkout_advance(:lock, 'cr-s', checkout_test.pay('cap-1', 1000), until => 'stock_commit');
-- a read says it did nothing
SELECT state, created, phases_run, ended FROM checkout_status(:lock, 'cr-s');

-- a business failure: the phases run before it count, and it ended the lock
SELECT lock_id AS lock2 FROM checkout_start('cr-2', 'cr-s', checkout_test.one_line('CR-A', 99, 1000)) \gset
SELECT state, failed_phase, phases_run, ended FROM checkout_advance(:lock2, 'cr-s', until => 'price_lock');

-- cancel and fail end the lock, and run no phase
SELECT lock_id AS lock3 FROM checkout_start('cr-3', 'cr-s', checkout_test.one_line('CR-A', 1, 1000)) \gset
SELECT state, phases_run, ended FROM checkout_extend(:lock3, 'cr-s', '1 minute');
SELECT state, phases_run, ended FROM checkout_cancel(:lock3, 'cr-s');
SELECT lock_id AS lock4 FROM checkout_advance((checkout_start('cr-4', 'cr-s', checkout_test.one_line('CR-A', 1, 1000))).lock_id,
                                              'cr-s', until => 'inventory_reservation') \gset
SELECT state, failed_phase, phases_run, ended FROM checkout_fail(:lock4, 'cr-s', 'card declined');
SELECT lock_id AS lock5 FROM checkout_start('cr-5', 'cr-s', checkout_test.one_line('CR-A', 1, 1000)) \gset
SELECT state, phases_run, ended FROM checkout_release(:lock5, 'support');

-- expiry on touch: the call that touched it ended it; a paid lock rolls forward
BEGIN;
SELECT lock_id AS lock6 FROM checkout_advance((checkout_start('cr-6', 'cr-s', checkout_test.one_line('CR-A', 1, 1000))).lock_id,
                                              'cr-s', until => 'price_lock') \gset
CALL checkout_test.make_overdue(:lock6);
SELECT state, phase, phases_run, ended FROM checkout_advance(:lock6, 'cr-s', until => 'price_lock');
COMMIT;
BEGIN;
SELECT lock_id AS lock7 FROM checkout_advance(
    (checkout_advance((checkout_start('cr-7', 'cr-s', checkout_test.one_line('CR-A', 1, 1000))).lock_id,
                      'cr-s', checkout_test.pay('auth-7', 1000), until => 'order_creation')).lock_id,
    'cr-s', checkout_test.pay('cap-7', 1000), until => 'payment_capture') \gset
CALL checkout_test.make_overdue(:lock7);
SELECT state, phase, phases_run, ended FROM checkout_advance(:lock7, 'cr-s', until => 'payment_capture');
COMMIT;
-- a start that finds its own overdue lock by key ends it, and says so
BEGIN;
SELECT lock_id AS lock8 FROM checkout_start('cr-8', 'cr-s', checkout_test.one_line('CR-A', 1, 1000), idempotency_key => 'k8') \gset
CALL checkout_test.make_overdue(:lock8);
SELECT lock_id = :lock8 AS same, state, created, phases_run, ended
FROM checkout_start('cr-8', 'cr-s', checkout_test.one_line('CR-A', 1, 1000), idempotency_key => 'k8');
COMMIT;
SELECT * FROM checkout_verify();
