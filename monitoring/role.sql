-- A login role for postgres_exporter with only what the checkout queries
-- (monitoring/postgres_exporter/checkout.yaml) read: the checkout.stats view
-- and checkout_monitor().  It cannot read locks, carts, payments or session
-- ids, nor call anything else.  Run as a superuser in the database that has
-- the extension; roles are cluster-wide, the grants are per database.
--
--   psql -d app -f monitoring/role.sql
--
-- The exporter's built-in PostgreSQL metrics (pg_stat_*) want more: add
-- GRANT pg_monitor TO checkout_exporter if you keep them on.
DO $$
BEGIN
    CREATE ROLE checkout_exporter LOGIN;
EXCEPTION WHEN duplicate_object THEN
    RAISE NOTICE 'role checkout_exporter exists, granting again';
END
$$;

DO $$
DECLARE
    api name := (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                 WHERE e.extname = 'checkout');
BEGIN
    IF api IS NULL THEN
        RAISE EXCEPTION 'extension checkout is not installed in database %', current_database();
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO checkout_exporter', current_database());
    GRANT USAGE ON SCHEMA checkout TO checkout_exporter;
    GRANT SELECT ON checkout.stats TO checkout_exporter;
    EXECUTE format('GRANT EXECUTE ON FUNCTION %I.checkout_monitor(integer) TO checkout_exporter', api);
END
$$;
