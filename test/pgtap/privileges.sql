-- The privilege split: PUBLIC gets nothing, checkout_app may call the
-- application API and read the ledger but never write it, checkout_admin may
-- load stock and prices (never "reserved") and run the admin functions.
\ir ../fixtures/checkout_test.sql
BEGIN;
SELECT plan(16);

CALL checkout_test.create_roles('tap');
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('PRIV-1', 10, 100);

SET ROLE tap_nobody;
SELECT throws_ok($$SELECT checkout_start('priv-cart', 's', '[{"line_id":"1","sku":"PRIV-1","quantity":1,"unit_price":100}]')$$,
                 '42501', NULL, 'a role without checkout_app cannot start a checkout');
SELECT throws_ok($$SELECT checkout_status(1, 's')$$, '42501', NULL, '... nor read a status');
SELECT throws_ok($$SELECT * FROM checkout.inventory$$, '42501', NULL, '... nor read the ledger');
RESET ROLE;

SET ROLE tap_app;
SELECT is((SELECT phase::text FROM checkout_advance(
             (SELECT lock_id FROM checkout_start('priv-cart', 's', '[{"line_id":"1","sku":"PRIV-1","quantity":1,"unit_price":100}]')),
             's', until => 'inventory_reservation')),
          'inventory_reservation', 'checkout_app can start a checkout and reserve stock');
SELECT lives_ok($$SELECT * FROM checkout.inventory$$, 'checkout_app can read the ledger');
SELECT throws_ok($$UPDATE checkout.inventory SET reserved = 0$$, '42501', NULL, 'checkout_app cannot write the ledger');
SELECT throws_ok($$INSERT INTO checkout.inventory (sku, on_hand) VALUES ('X', 1)$$, '42501', NULL, '... nor add skus');
SELECT throws_ok($$SELECT * FROM checkout.locks$$, '42501', NULL, 'checkout_app cannot read other sessions'' locks directly');
SELECT throws_ok($$SELECT checkout_cleanup_expired()$$, '42501', NULL, 'checkout_app cannot run admin functions');
SELECT throws_ok($$SELECT checkout_release(1, 'x')$$, '42501', NULL, '... nor force-release a lock');
RESET ROLE;

SET ROLE tap_admin;
SELECT lives_ok($$INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('PRIV-2', 5, 10)$$, 'checkout_admin can add a sku');
SELECT lives_ok($$UPDATE checkout.inventory SET on_hand = 20, unit_price = 110 WHERE sku = 'PRIV-1'$$, 'checkout_admin can set stock and prices');
SELECT throws_ok($$UPDATE checkout.inventory SET reserved = 0 WHERE sku = 'PRIV-1'$$, '42501', NULL, 'checkout_admin cannot write reserved');
SELECT throws_ok($$UPDATE checkout.inventory SET on_hand = 0 WHERE sku = 'PRIV-1'$$, '23514', NULL, 'on_hand below reserved is refused');
SELECT lives_ok($$SELECT checkout_cleanup_expired()$$, 'checkout_admin can sweep');
SELECT lives_ok($$SELECT * FROM checkout_verify()$$, 'checkout_admin can verify');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
