-- checkout 0.2.0 -> 0.3.0
--
-- The status row says what the call that returned it did: whether
-- checkout_start created the lock, the phases the call completed and whether
-- it ended the lock, so a retried webhook can be told from the call that did
-- the work.  The fields go at the end: code reading the ten fields of 0.2.0
-- by name or position reads them as before.
-- New: checkout.table_access(), where the direct path is in use and why not.
--
-- Live locks keep working across the update: no table changes, and the 0.3.0
-- library also runs against the 0.2.0 schema (it fills the status fields the
-- type has) until this script runs.

\echo Use "ALTER EXTENSION checkout UPDATE TO '0.3.0'" to load this file. \quit

ALTER TYPE checkout.status
    ADD ATTRIBUTE created boolean,
    ADD ATTRIBUTE phases_run checkout.phase[],
    ADD ATTRIBUTE ended boolean;

CREATE FUNCTION checkout.table_access()
RETURNS TABLE (table_name text, direct boolean, reason text)
AS 'MODULE_PATHNAME', 'checkout_table_access'
LANGUAGE C VOLATILE SECURITY DEFINER;

REVOKE ALL ON FUNCTION checkout.table_access() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION checkout.table_access() TO checkout_admin;
