-- CREATE and DROP EXTENSION work twice in a row; the roles survive (they are
-- cluster-wide) and keep their membership; PUBLIC gets nothing.
\i test/fixtures/checkout_test.sql
SET client_min_messages = warning;
DROP EXTENSION checkout;
CREATE EXTENSION checkout;
DROP EXTENSION checkout;
CREATE EXTENSION checkout;
SELECT rolname FROM pg_roles WHERE rolname IN ('checkout_app', 'checkout_admin') ORDER BY 1;
SELECT pg_has_role('checkout_admin', 'checkout_app', 'MEMBER') AS admin_is_app;
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_execute
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'checkout'
ORDER BY 1;
SELECT c.relname, has_table_privilege('public', c.oid, 'SELECT') AS public_may_read
FROM pg_class c WHERE c.relnamespace = 'checkout'::regnamespace AND c.relkind IN ('r', 'v') ORDER BY 1;
