-- The business rules stay superuser settings (issue 8): neither checkout_app
-- nor checkout_admin can change them for its own session (42501), so the
-- application cannot lift the cart cap, loosen price drift, silence or
-- redirect events; the default TTL stays the application's own choice.
BEGIN;
SELECT plan(24);

CREATE ROLE tap_sp_app NOLOGIN IN ROLE checkout_app;
CREATE ROLE tap_sp_admin NOLOGIN IN ROLE checkout_admin;
CREATE TEMP TABLE sp_rules (name text, value text);
INSERT INTO sp_rules VALUES
    ('max_lines', '100000'), ('price_drift_tolerance', '100'), ('notify_channel', 'elsewhere'),
    ('notify_events', 'all'),
    ('log_events', 'none'), ('log_destination', 'table'), ('logging', 'off'), ('max_ttl', '1d'),
    ('prevent_concurrent', 'off'), ('cart_protection', 'off'), ('payment_gateway', 'other');
GRANT SELECT ON sp_rules TO tap_sp_app, tap_sp_admin;

SET ROLE tap_sp_app;
SELECT throws_ok(format('SET checkout.%s = %L', name, value), '42501', NULL, format('checkout_app cannot SET checkout.%s', name))
FROM sp_rules ORDER BY name;
SELECT throws_ok($$SELECT set_config('checkout.max_lines', '100000', false)$$, '42501', NULL,
                 '... nor raise checkout.max_lines through set_config');
SELECT lives_ok($$SET checkout.ttl = '5min'$$, 'checkout_app may choose its default ttl');
RESET ROLE;

SET ROLE tap_sp_admin;
SELECT throws_ok(format('SET checkout.%s = %L', name, value), '42501', NULL, format('checkout_admin cannot SET checkout.%s', name))
FROM sp_rules ORDER BY name;
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
