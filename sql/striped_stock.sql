-- Striped stock (issue 22): a sku's units over rows of
-- checkout.inventory_stripes.  Striping a sku with live reservations moves
-- each lock's reservation whole into the stripe its lock hashes to
-- (lock_id % n + 1); a reservation takes its own stripe, or the fullest, or
-- (when no one stripe has enough) every stripe in order, own first, and is
-- refused only when the sku's total is short; sale and release go back to
-- exactly the stripes recorded; a restock spreads over the stripes;
-- rebalance evens the stripes and folds the totals into the inventory row;
-- unstriping gathers everything back into it.  checkout.stock shows the live
-- totals, checkout_verify checks every stripe.  Lock ids start at 8001, so
-- with 4 stripes lock 8001 owns stripe 2, 8002 stripe 3, 8003 stripe 4,
-- 8004 stripe 1, and so on.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
SET checkout.log_events = 'none';
CALL checkout_test.reset(8001);
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('ST-A', 40, 100), ('ST-B', 10, 50);

-- every stock row: the inventory row is stripe 0 (for a striped sku its
-- totals as of the last fold); held = what reservations record there
CREATE TEMP VIEW layout AS
    SELECT i.sku, 0 AS stripe, i.on_hand, i.reserved,
           (SELECT coalesce(sum(r.quantity), 0) FROM checkout.reservations r
            WHERE r.sku = i.sku AND r.stripe = 0) AS held
    FROM checkout.inventory i
    UNION ALL
    SELECT t.sku, t.stripe, t.on_hand, t.reserved,
           (SELECT coalesce(sum(r.quantity), 0) FROM checkout.reservations r
            WHERE r.sku = t.sku AND r.stripe = t.stripe)
    FROM checkout.inventory_stripes t;
CREATE TEMP VIEW holds AS
    SELECT lock_id, sku, stripe, quantity FROM checkout.reservations;
-- start a lock of `lines` and reserve; the lock's id, state and error
CREATE FUNCTION pg_temp.reserve(cart text, lines jsonb)
RETURNS TABLE (lock_id bigint, state checkout.lock_state, error_code text, error_message text)
LANGUAGE sql AS $$
    SELECT s.lock_id, s.state, s.error_code, s.error_message
    FROM checkout_advance((checkout_start(cart, 'st', lines)).lock_id, 'st', until => 'price_lock') s $$;
-- pay and complete a reserved lock
CREATE FUNCTION pg_temp.sell(lid bigint) RETURNS checkout.lock_state LANGUAGE sql AS $$
    SELECT s.state FROM checkout.locks l,
        LATERAL checkout_advance((checkout_advance(lid, 'st', checkout_test.pay('a-' || lid, l.total),
            until => 'order_creation')).lock_id, 'st', checkout_test.pay('c-' || lid, l.total), until => 'stock_commit') s
    WHERE l.lock_id = lid $$;

-- 1. live reservations before striping: 8001 holds 3, 8002 2 (+1 of ST-B),
--    8003 two lines of ST-A (2 + 1)
SELECT * FROM pg_temp.reserve('st-1', checkout_test.one_line('ST-A', 3, 100));
SELECT * FROM pg_temp.reserve('st-2', checkout_test.lines(checkout_test.line('1', 'ST-A', 2, 100),
                                                          checkout_test.line('2', 'ST-B', 1, 50)));
SELECT * FROM pg_temp.reserve('st-3', checkout_test.lines(checkout_test.line('1', 'ST-A', 2, 100),
                                                          checkout_test.line('2', 'ST-A', 1, 100)));
SELECT * FROM holds ORDER BY lock_id, sku, stripe;

-- 2. striping ST-A 4 ways: each reservation whole in its lock's stripe, the
--    32 available units spread evenly, the totals unchanged
SELECT checkout_stripe('ST-A', 4);
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
SELECT * FROM holds ORDER BY lock_id, sku, stripe;
SELECT * FROM checkout.stock ORDER BY sku;
SELECT * FROM checkout_verify();

-- 3. a reservation takes its own stripe: 8004 owns stripe 1
SELECT * FROM pg_temp.reserve('st-4', checkout_test.one_line('ST-A', 5, 100));
SELECT * FROM holds WHERE lock_id = 8004;
-- 8005 owns stripe 2, which has 8 available: 8 from its own stripe ...
SELECT * FROM pg_temp.reserve('st-5', checkout_test.one_line('ST-A', 8, 100));
-- ... 8006 owns stripe 3 (8 available) but wants 12, more than any one
-- stripe has: every stripe locked in order, its own first, then stripe 4
SELECT * FROM pg_temp.reserve('st-6', checkout_test.one_line('ST-A', 12, 100));
SELECT * FROM holds WHERE lock_id IN (8005, 8006) ORDER BY lock_id, stripe;
-- 8007 owns stripe 4, which has 4 left: 2 of them
SELECT * FROM pg_temp.reserve('st-7', checkout_test.one_line('ST-A', 2, 100));
SELECT * FROM holds WHERE lock_id = 8007;
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
SELECT lock_id, reservations FROM checkout.active_locks ORDER BY lock_id;
SELECT * FROM checkout_verify();

-- 4. a cart of a striped and an unstriped sku refused for the unstriped one:
--    what the stripe took goes back, nothing is held
SELECT * FROM pg_temp.reserve('st-8', checkout_test.lines(checkout_test.line('1', 'ST-A', 1, 100),
                                                          checkout_test.line('2', 'ST-B', 50, 50)));
SELECT count(*) AS held_by_8008 FROM checkout.reservations WHERE lock_id = 8008;
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;

-- 5. the last units, spread over stripes 1 (3 available) and 4 (2)
SELECT * FROM checkout.stock WHERE sku = 'ST-A';
-- 8009 owns stripe 2, which is empty: the fullest stripe (1) serves it
SELECT * FROM pg_temp.reserve('st-9', checkout_test.one_line('ST-A', 2, 100));
SELECT * FROM holds WHERE lock_id = 8009;
-- 8010 wants 4 of the 3 left: refused with the sku's total available
SELECT * FROM pg_temp.reserve('st-10', checkout_test.one_line('ST-A', 4, 100));
-- 8011 owns stripe 4 (2 available) and wants all 3: its own stripe first,
-- then on in stripe order (1)
SELECT * FROM pg_temp.reserve('st-11', checkout_test.one_line('ST-A', 3, 100));
SELECT * FROM holds WHERE lock_id = 8011 ORDER BY stripe;
-- nothing left
SELECT * FROM pg_temp.reserve('st-12', checkout_test.one_line('ST-A', 1, 100));
SELECT count(*) AS held_by_refused FROM checkout.reservations WHERE lock_id IN (8010, 8012);
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
SELECT * FROM checkout.stock WHERE sku = 'ST-A';
SELECT * FROM checkout_verify();

-- 6. sale and release go back to exactly the recorded stripes: 8006 (stripes
--    3 and 4) sells 12, 8011 (stripes 4 and 1) is cancelled, 8001 (stripe 2)
--    expires
SELECT pg_temp.sell(8006);
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
SELECT state FROM checkout_cancel(8011, 'st');
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
CALL checkout_test.make_overdue(8001);
SELECT checkout_cleanup_expired() AS expired;
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
SELECT * FROM checkout.stock WHERE sku = 'ST-A';
SELECT * FROM checkout_verify();

-- 7. restocks through checkout.inventory: the change spreads over the
--    stripes, the row (stripe 0 here) gets the live totals; below what is
--    reserved: 23514 and nothing changes.  (What RETURNING shows, and a
--    restock against totals folded long ago: striped_restock_returning.)
UPDATE checkout.inventory SET on_hand = on_hand + 9 WHERE sku = 'ST-A';
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
UPDATE checkout.inventory SET on_hand = on_hand - 4 WHERE sku = 'ST-A';
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
SELECT * FROM checkout.stock WHERE sku = 'ST-A';
SELECT checkout_test.err($$UPDATE checkout.inventory SET on_hand = on_hand - 20 WHERE sku = 'ST-A'$$) AS too_few_left;
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
-- down to exactly what is reserved: allowed, nothing available
UPDATE checkout.inventory SET on_hand = on_hand - (SELECT available FROM checkout.stock WHERE sku = 'ST-A')
WHERE sku = 'ST-A';
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
SELECT * FROM checkout.stock WHERE sku = 'ST-A';
SELECT * FROM pg_temp.reserve('st-13', checkout_test.one_line('ST-A', 1, 100));
-- a price change alone leaves the stock be; a restock with it moves both
UPDATE checkout.inventory SET unit_price = 110 WHERE sku = 'ST-A';
SELECT * FROM checkout.stock WHERE sku = 'ST-A';
UPDATE checkout.inventory SET on_hand = on_hand + 20, unit_price = 100 WHERE sku = 'ST-A';
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
SELECT * FROM checkout.stock WHERE sku = 'ST-A';
SELECT * FROM checkout_verify();

-- 8. rebalance: a sale is not folded into the inventory row, whose totals
--    then lag behind checkout.stock; a stripe with less than half its share
--    of the available units makes checkout_rebalance spread them evenly (1)
--    and fold the totals; once even, it folds only (0)
SELECT pg_temp.sell(8004);
-- 8014 owns stripe 3 and takes all it has
SELECT * FROM pg_temp.reserve('st-14', checkout_test.one_line('ST-A', 5, 100));
SELECT * FROM holds WHERE lock_id = 8014;
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
SELECT * FROM checkout.stock WHERE sku = 'ST-A';
SELECT checkout_rebalance('ST-A');
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
SELECT checkout_rebalance('ST-A');
SELECT checkout_rebalance();
-- an unstriped sku: nothing to rebalance; an unknown one: 22023, as for checkout_stripe
SELECT checkout_rebalance('ST-B') AS unstriped,
       checkout_test.err($$SELECT checkout_rebalance('NO-SUCH-SKU')$$) AS unknown;
SELECT * FROM layout ORDER BY sku, stripe;
SELECT * FROM checkout_verify();

-- 9. restriping 4 -> 2: each lock's reservation gathered whole into the
--    stripe its lock hashes to (even lock ids stripe 1, odd ones stripe 2)
SELECT * FROM holds WHERE sku = 'ST-A' ORDER BY lock_id, stripe;
SELECT checkout_stripe('ST-A', 2);
SELECT * FROM holds WHERE sku = 'ST-A' ORDER BY lock_id, stripe;
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
SELECT * FROM checkout.stock WHERE sku = 'ST-A';
SELECT * FROM checkout_verify();

-- 10. unstriping (1) with live reservations: every reservation back in the
--     inventory row, which holds the units again; reservations, sales and
--     releases then use the row
SELECT checkout_stripe('ST-A', 1);
SELECT count(*) AS stripes_left FROM checkout.inventory_stripes;
SELECT * FROM holds WHERE sku = 'ST-A' ORDER BY lock_id, stripe;
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
SELECT * FROM checkout.stock ORDER BY sku;
SELECT * FROM pg_temp.reserve('st-15', checkout_test.one_line('ST-A', 2, 100));
SELECT * FROM holds WHERE lock_id = 8015;
SELECT pg_temp.sell(8014);
SELECT state FROM checkout_cancel(8015, 'st');
SELECT * FROM layout WHERE sku = 'ST-A' ORDER BY stripe;
SELECT * FROM checkout_verify();
-- striped again (3): sold and released from the stripes the striping chose,
-- a cart of a striped and an unstriped sku sold from both
SELECT checkout_stripe('ST-A', 3);
SELECT * FROM holds ORDER BY lock_id, sku, stripe;
SELECT pg_temp.sell(8002);
SELECT state FROM checkout_cancel(8003, 'st');
SELECT state FROM checkout_cancel(8005, 'st');
SELECT * FROM holds ORDER BY lock_id, sku, stripe;
SELECT * FROM layout ORDER BY sku, stripe;
SELECT * FROM checkout.stock ORDER BY sku;
SELECT * FROM checkout_verify();
SELECT skus, units_on_hand, units_reserved FROM checkout.stats;
SELECT units_reserved FROM checkout_monitor();

-- 11. checkout_verify reports a broken stripe, and a reservation of a stripe
--     its sku does not have (each break rolled back)
SELECT * FROM pg_temp.reserve('st-16', checkout_test.one_line('ST-A', 4, 100));
SELECT * FROM holds WHERE lock_id = 8016;
BEGIN;
SAVEPOINT s;
UPDATE checkout.inventory_stripes SET reserved = reserved + 1 WHERE sku = 'ST-A' AND stripe = 2;
SELECT * FROM checkout_verify();
ROLLBACK TO SAVEPOINT s;
UPDATE checkout.inventory_stripes SET reserved = reserved - 4 WHERE sku = 'ST-A' AND stripe = 1;
SELECT * FROM checkout_verify();
ROLLBACK TO SAVEPOINT s;
-- the reservation moved to a stripe 7 of a sku of 3: its stripe 1 is short
-- of it too
UPDATE checkout.reservations SET stripe = 7 WHERE lock_id = 8016;
SELECT * FROM checkout_verify();
ROLLBACK TO SAVEPOINT s;
-- a reservation of the inventory row (stripe 0) of a striped sku
UPDATE checkout.reservations SET stripe = 0 WHERE lock_id = 8016;
SELECT * FROM checkout_verify();
ROLLBACK TO SAVEPOINT s;
-- a reservation of stripe 2 of an unstriped sku (ST-B)
INSERT INTO checkout.reservations (lock_id, sku, quantity, stripe) VALUES (8016, 'ST-B', 1, 2);
SELECT * FROM checkout_verify();
ROLLBACK;
SELECT * FROM checkout_verify();

-- 12. bad arguments: 22023, and nothing changes
SELECT checkout_test.err($$SELECT checkout_stripe('ST-A', 0)$$) AS zero,
       checkout_test.err($$SELECT checkout_stripe('ST-A', -3)$$) AS negative,
       checkout_test.err($$SELECT checkout_stripe('ST-A', 257)$$) AS too_many;
SELECT checkout_test.err($$SELECT checkout_stripe('NO-SUCH-SKU', 2)$$) AS unknown_sku,
       checkout_test.err($$SELECT checkout_stripe('it''s', 2)$$) AS quoted_sku;
SELECT checkout_test.err($$SELECT checkout_stripe(NULL, 2)$$) AS null_sku,
       checkout_test.err($$SELECT checkout_stripe('ST-A', NULL)$$) AS null_stripes,
       checkout_test.err($$SELECT checkout_stripe('', 2)$$) AS empty_sku;
SELECT checkout_test.err($$SELECT checkout_rebalance('')$$) AS rebalance_empty,
       checkout_test.err(format('SELECT checkout_rebalance(%L)', repeat('x', 1000))) AS rebalance_long;
SELECT * FROM layout ORDER BY sku, stripe;
-- the most stripes there may be: 256, every unit in one of them
SELECT checkout_stripe('ST-B', 256);
SELECT count(*) AS stripes, sum(on_hand) AS on_hand, max(on_hand) AS most, min(on_hand) AS least
FROM checkout.inventory_stripes WHERE sku = 'ST-B';
SELECT checkout_stripe('ST-B', 1);

-- 13. privileges: checkout_app neither stripes nor rebalances (42501) nor
--     reads the stripes; it reads checkout.stock.  checkout_admin does all
--     of it, and restocks a striped sku through checkout.inventory.
BEGIN;
CALL checkout_test.create_roles('st');
GRANT USAGE ON SCHEMA checkout_test TO st_app, st_nobody, st_admin;
SET LOCAL ROLE st_app;
SELECT checkout_test.err($$SELECT checkout_stripe('ST-A', 2)$$) AS app_stripe,
       checkout_test.err($$SELECT checkout_rebalance('ST-A')$$) AS app_rebalance,
       checkout_test.err($$SELECT checkout_rebalance()$$) AS app_rebalance_all;
SELECT checkout_test.err($$SELECT * FROM checkout.inventory_stripes$$) AS app_reads_stripes,
       checkout_test.err($$UPDATE checkout.inventory SET on_hand = on_hand + 1 WHERE sku = 'ST-A'$$) AS app_restocks;
SELECT sku, on_hand, reserved, available, stripes FROM checkout.stock ORDER BY sku;
RESET ROLE;
SET LOCAL ROLE st_nobody;
SELECT checkout_test.err($$SELECT checkout_stripe('ST-A', 2)$$) AS nobody_stripe;
RESET ROLE;
SET LOCAL ROLE st_admin;
SELECT checkout_stripe('ST-A', 2);
SELECT checkout_rebalance('ST-A');
UPDATE checkout.inventory SET on_hand = on_hand + 2 WHERE sku = 'ST-A';
SELECT * FROM checkout.inventory_stripes ORDER BY sku, stripe;
RESET ROLE;
SELECT * FROM checkout_verify();
ROLLBACK;

-- 14. a striped sku deleted from the inventory (once nothing holds it)
--     takes its stripes along
SELECT l.lock_id, c.state FROM checkout.locks l, LATERAL checkout_cancel(l.lock_id, 'st') c
WHERE l.state = 'active' ORDER BY l.lock_id;
SELECT checkout_stripe('ST-A', 4);
DELETE FROM checkout.inventory WHERE sku = 'ST-A';
SELECT count(*) AS stripes_left FROM checkout.inventory_stripes;
SELECT * FROM checkout_verify();
RESET checkout.log_events;
