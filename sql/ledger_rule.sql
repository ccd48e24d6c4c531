-- Issue 19: a table with a rule of the DBA's own is written by SQL
-- statements, so that the rule applies as it does to any statement.  A
-- DO ALSO rule logging every change of a ledger row must see the
-- reservation and the release of each sku of a checkout, and the checkout
-- must go on as without the rule.  (A statement with a data-modifying WITH
-- cannot be rewritten into several queries by a rule: 0A000.)
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
SELECT pg_postmaster_start_time() AS server_started \gset
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('LR-A', 20, 100), ('LR-B', 20, 40);
CREATE SCHEMA lr;
CREATE TABLE lr.ledger_log (sku text, on_hand_after bigint, reserved_before bigint, reserved_after bigint);
CREATE RULE lr_ledger_log AS ON UPDATE TO checkout.inventory
    DO ALSO INSERT INTO lr.ledger_log VALUES (NEW.sku, NEW.on_hand, OLD.reserved, NEW.reserved);
SELECT table_name, direct, reason ~* '(rule|lr_ledger_log)' AS reason_names_it
FROM checkout_test.table_access() WHERE table_name = 'inventory';

-- reserved, then released by a cancel
SELECT lock_id AS l1 FROM checkout_start('lr-1', 'lr',
       checkout_test.lines(checkout_test.line('1', 'LR-A', 2, 100), checkout_test.line('2', 'LR-B', 1, 40))) \gset
SELECT state, phase FROM checkout_advance(:l1, 'lr', until => 'price_lock');
SELECT sku, reserved FROM checkout.inventory ORDER BY sku;
SELECT state FROM checkout_cancel(:l1, 'lr');
-- reserved, then sold
SELECT lock_id AS l2 FROM checkout_start('lr-2', 'lr', checkout_test.one_line('LR-B', 3, 40)) \gset
SELECT state, phase FROM checkout_advance(:l2, 'lr', checkout_test.pay('a2', 120), until => 'order_creation');
SELECT state, phase FROM checkout_advance(:l2, 'lr', checkout_test.pay('c2', 120), until => 'stock_commit');
SELECT sku, on_hand_after, reserved_before, reserved_after, count(*)
FROM lr.ledger_log GROUP BY 1, 2, 3, 4 ORDER BY 1, 3, 4;
SELECT sku, on_hand, reserved FROM checkout.inventory ORDER BY sku;

SELECT * FROM checkout_verify();
SELECT pg_postmaster_start_time() = :'server_started' AS server_not_restarted;

-- the tables as the extension made them, for the tests after this one
DROP EXTENSION checkout;
DROP SCHEMA lr CASCADE;
CREATE EXTENSION checkout;
