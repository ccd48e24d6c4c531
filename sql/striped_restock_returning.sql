-- A restock of a striped sku through checkout.inventory, as the catalog side
-- sees it (issue 22: checkout.inventory still shows and accepts on_hand and
-- reserved, restocks by UPDATE as before).  A striped sku's inventory row
-- holds its totals as of the last fold (a rebalance, a restock), so:
-- 1. a restock the live totals allow is not refused because the totals
--    folded last had more reserved;
-- 2. UPDATE ... RETURNING on_hand, reserved shows the totals the restock
--    leaves (what the row then holds), not the folded row plus the change.
-- (Failing on main since ff94f4c, where inventory_restock became an AFTER
-- trigger: the row's CHECK constraint judges the statement's row, folded
-- totals plus the change, before the trigger counts the stripes (1: 23514),
-- and RETURNING shows that row (2).  The expected output is that of the
-- BEFORE trigger of 9e5b66e, which gave the row the live totals first.)
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
CALL checkout_test.reset(8101);
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('SR-A', 10, 100);
SELECT checkout_stripe('SR-A', 2);
-- 8101 holds all 10 when the totals are folded, then is cancelled: the
-- row says 10 reserved, none is
SELECT lock_id, state FROM checkout_advance((checkout_start('sr-1', 'sr', checkout_test.one_line('SR-A', 10, 100))).lock_id,
    'sr', until => 'price_lock');
SELECT checkout_rebalance('SR-A') AS spread;
SELECT state FROM checkout_cancel(8101, 'sr');
SELECT sku, on_hand, reserved FROM checkout.inventory;
SELECT sku, on_hand, reserved, available FROM checkout.stock;

-- 1. taking 5 of the 10 units nobody holds
UPDATE checkout.inventory SET on_hand = on_hand - 5 WHERE sku = 'SR-A';
SELECT sku, on_hand, reserved, available FROM checkout.stock;

-- 2. 8102 holds 3 (not folded); a restock of 4 returns the totals it leaves
SELECT lock_id, state FROM checkout_advance((checkout_start('sr-2', 'sr', checkout_test.one_line('SR-A', 3, 100))).lock_id,
    'sr', until => 'price_lock');
UPDATE checkout.inventory SET on_hand = on_hand + 4 WHERE sku = 'SR-A' RETURNING sku, on_hand, reserved;
SELECT sku, on_hand, reserved FROM checkout.inventory;
SELECT sku, on_hand, reserved, available FROM checkout.stock;
SELECT * FROM checkout_verify();
RESET checkout.log_events;
