-- checkout 0.1.0 -> 0.2.0
--
-- Security: every constraint, index predicate and default that 0.1.0 wrote
-- with bare operators (`state = 'active'`, `drift_percent <> 0`, ...) could
-- bind to an operator planted in a schema on the search_path while CREATE
-- EXTENSION ran; they are dropped and made again with pg_catalog operators
-- and operands of exact types, so whatever 0.1.0 bound to is let go.
-- Performance: only the indexes the queries need, none whose predicate names
-- a column an active lock's updates change (those updates stay HOT), and
-- room on each page of checkout.locks for HOT updates.
-- New: checkout.payment_metadata (a payment payload's "metadata").
--
-- Live locks keep working across the update: no column changes, and the
-- 0.2.0 library also runs against the 0.1.0 schema until this script runs.

\echo Use "ALTER EXTENSION checkout UPDATE TO '0.2.0'" to load this file. \quit

ALTER TABLE checkout.inventory
    DROP CONSTRAINT inventory_reserved_within_on_hand,
    DROP CONSTRAINT inventory_unit_price_not_negative,
    ADD CONSTRAINT inventory_reserved_within_on_hand
        CHECK (reserved OPERATOR(pg_catalog.>=) 0::bigint AND reserved OPERATOR(pg_catalog.<=) on_hand),
    ADD CONSTRAINT inventory_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0::bigint);

ALTER TABLE checkout.locks
    ALTER COLUMN state SET DEFAULT 'active'::checkout.lock_state,
    DROP CONSTRAINT locks_expires_after_creation,
    DROP CONSTRAINT locks_finished_when_terminal,
    ADD CONSTRAINT locks_expires_after_creation CHECK (expires_at OPERATOR(pg_catalog.>) created_at),
    ADD CONSTRAINT locks_finished_when_terminal
        CHECK ((state OPERATOR(pg_catalog.=) 'active'::checkout.lock_state) OPERATOR(pg_catalog.=) (finished_at IS NULL));
ALTER TABLE checkout.locks SET (fillfactor = 80);

DROP INDEX checkout.locks_one_active_per_cart;
DROP INDEX checkout.locks_active_by_cart;
DROP INDEX checkout.locks_due;
DROP INDEX checkout.locks_finished_at;
DROP INDEX checkout.locks_completed_uncaptured;
DROP INDEX checkout.locks_rolled_back_with_payment;
CREATE UNIQUE INDEX locks_active_cart ON checkout.locks
    (cart_id, (CASE WHEN exclusive THEN 0::bigint ELSE lock_id END))
    WHERE state OPERATOR(pg_catalog.=) 'active'::checkout.lock_state;
-- `expires_at IS NOT NULL` (always true) keeps this index out of reach of a
-- query on a cart's active locks, which names no deadline: a plan kept from
-- when the table was empty (costs tie there) must not scan every active lock
-- of this index for one cart.  A query on deadlines implies the predicate.
CREATE INDEX locks_due ON checkout.locks (expires_at)
    WHERE state OPERATOR(pg_catalog.=) 'active'::checkout.lock_state AND expires_at IS NOT NULL;
CREATE INDEX locks_rolled_back ON checkout.locks (lock_id)
    WHERE state OPERATOR(pg_catalog.<>) 'active'::checkout.lock_state
      AND state OPERATOR(pg_catalog.<>) 'completed'::checkout.lock_state;

ALTER TABLE checkout.lock_lines
    DROP CONSTRAINT lock_lines_quantity_check,
    DROP CONSTRAINT lock_lines_cart_price_check,
    ADD CONSTRAINT lock_lines_quantity_check CHECK (quantity OPERATOR(pg_catalog.>=) 1::bigint),
    ADD CONSTRAINT lock_lines_cart_price_check CHECK (cart_price OPERATOR(pg_catalog.>=) 0::bigint);

ALTER TABLE checkout.reservations
    DROP CONSTRAINT reservations_quantity_check,
    ADD CONSTRAINT reservations_quantity_check CHECK (quantity OPERATOR(pg_catalog.>) 0::bigint);

DROP INDEX checkout.price_snapshots_taken_at;
CREATE INDEX price_snapshots_taken_at ON checkout.price_snapshots (taken_at)
    WHERE drift_percent OPERATOR(pg_catalog.<>) 0::numeric;

ALTER TABLE checkout.orders
    ALTER COLUMN status SET DEFAULT 'created'::text,
    DROP CONSTRAINT orders_source_check,
    DROP CONSTRAINT orders_status_check,
    ADD CONSTRAINT orders_source_check
        CHECK (source OPERATOR(pg_catalog.=) ANY ('{checkout,application}'::text[])),
    ADD CONSTRAINT orders_status_check
        CHECK (status OPERATOR(pg_catalog.=) ANY ('{created,cancelled}'::text[]));

ALTER TABLE checkout.compensations
    DROP CONSTRAINT compensations_kind_check,
    ADD CONSTRAINT compensations_kind_check
        CHECK (kind OPERATOR(pg_catalog.=) ANY ('{void_required,refund_required}'::text[]));

-- The C functions pin the search path themselves (pg_catalog only, while
-- they run SQL): cheaper per call than a SET clause.
ALTER FUNCTION @extschema@.checkout_start(text, text, jsonb, interval, text) RESET search_path;
ALTER FUNCTION @extschema@.checkout_advance(bigint, text, jsonb, checkout.phase) RESET search_path;
ALTER FUNCTION @extschema@.checkout_status(bigint, text) RESET search_path;
ALTER FUNCTION @extschema@.checkout_extend(bigint, text, interval) RESET search_path;
ALTER FUNCTION @extschema@.checkout_cancel(bigint, text) RESET search_path;
ALTER FUNCTION @extschema@.checkout_fail(bigint, text, text) RESET search_path;
ALTER FUNCTION @extschema@.checkout_cleanup_expired(integer) RESET search_path;
ALTER FUNCTION @extschema@.checkout_release(bigint, text) RESET search_path;

-- Gateway data the application passed with a payment ("metadata" of the
-- payload), as given; the extension stores it and never reads it.
CREATE TABLE checkout.payment_metadata (
    lock_id    bigint NOT NULL REFERENCES checkout.locks,
    phase      checkout.phase NOT NULL,
    metadata   jsonb  NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (lock_id, phase)
);
SELECT pg_catalog.pg_extension_config_dump('checkout.payment_metadata', '');
REVOKE ALL ON checkout.payment_metadata FROM PUBLIC;
GRANT SELECT ON checkout.payment_metadata TO checkout_admin;

-- One row per broken invariant, ordered; no rows when all is well:
--   ledger_reserved_matches_reservations  inventory.reserved <> what checkout.reservations hold
--   reservation_of_finished_lock          a lock that is no longer active still holds stock
--   active_lock_past_deadline             active and expires_at more than 5 minutes ago
--                                         (the worker, or a touch, should have expired it)
--   completed_lock_without_capture        completed, but no captured payment recorded
--   order_of_failed_lock_not_cancelled    the order of a failed/expired/cancelled lock is live
--   payment_without_compensation          a rolled-back lock's authorisation (capture) has no
--                                         void_required (refund_required) compensation
CREATE OR REPLACE FUNCTION @extschema@.checkout_verify()
RETURNS TABLE (invariant text, subject text, detail text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT v.invariant, v.subject, v.detail FROM (
        SELECT 'ledger_reserved_matches_reservations' AS invariant, i.sku AS subject,
               pg_catalog.format('inventory.reserved = %s but reservations hold %s',
                                 i.reserved, COALESCE(r.held, 0)) AS detail
        FROM checkout.inventory i
        LEFT JOIN (SELECT r.sku, pg_catalog.sum(r.quantity) AS held
                   FROM checkout.reservations r GROUP BY r.sku) r ON r.sku = i.sku
        WHERE i.reserved <> COALESCE(r.held, 0)
      UNION ALL
        SELECT 'reservation_of_finished_lock', r.lock_id::text,
               pg_catalog.format('lock is %s but still holds %s of %s', l.state, r.quantity, r.sku)
        FROM checkout.reservations r JOIN checkout.locks l ON l.lock_id = r.lock_id
        WHERE l.state <> 'active'
      UNION ALL
        SELECT 'active_lock_past_deadline', l.lock_id::text,
               pg_catalog.format('active, but expired %s ago (more than 5 minutes): %s',
                                 pg_catalog.date_trunc('second', pg_catalog.now() - l.expires_at),
                                 CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                                                   WHERE a.backend_type = 'checkout sweeper'
                                                     AND a.datname = pg_catalog.current_database())
                                      THEN 'the sweeper of this database is running but has not expired it'
                                      ELSE 'no checkout sweeper runs for this database (checkout must be in shared_preload_libraries and the database in checkout.database); expire with checkout_cleanup_expired() meanwhile'
                                 END)
        FROM checkout.locks l
        WHERE l.state = 'active' AND l.expires_at < pg_catalog.now() - interval '5 minutes'
      UNION ALL
        SELECT 'completed_lock_without_capture', l.lock_id::text,
               'completed, but no captured payment is recorded'
        FROM checkout.locks l
        WHERE l.state = 'completed' AND l.capture_reference IS NULL
      UNION ALL
        SELECT 'order_of_failed_lock_not_cancelled', o.order_ref,
               pg_catalog.format('lock %s is %s but its order is %s', l.lock_id, l.state, o.status)
        FROM checkout.orders o JOIN checkout.locks l ON l.lock_id = o.lock_id
        WHERE l.state IN ('failed', 'expired', 'cancelled') AND o.status <> 'cancelled'
      UNION ALL
        SELECT 'payment_without_compensation', l.lock_id::text,
               pg_catalog.format('lock is %s; %s %s of %s has no %s compensation', l.state,
                                 CASE WHEN l.capture_reference IS NOT NULL THEN 'capture' ELSE 'authorisation' END,
                                 COALESCE(l.capture_reference, l.auth_reference),
                                 COALESCE(l.capture_amount, l.auth_amount),
                                 CASE WHEN l.capture_reference IS NOT NULL THEN 'refund_required' ELSE 'void_required' END)
        FROM checkout.locks l
        WHERE l.state <> 'active' AND l.state <> 'completed'   -- failed, expired, cancelled
          AND l.auth_reference IS NOT NULL   -- a capture follows an authorisation
          AND NOT EXISTS (SELECT 1 FROM checkout.compensations c
                          WHERE c.lock_id = l.lock_id
                            AND c.kind = CASE WHEN l.capture_reference IS NOT NULL
                                              THEN 'refund_required' ELSE 'void_required' END
                            AND c.reference = COALESCE(l.capture_reference, l.auth_reference))
    ) v
    ORDER BY v.invariant, v.subject
$$;

