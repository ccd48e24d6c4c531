-- checkout 0.2.0 -> 0.3.0
--
-- The status row says what the call that returned it did: whether
-- checkout_start created the lock, the phases the call completed and whether
-- it ended the lock, so a retried webhook can be told from the call that did
-- the work.  The fields go at the end: code reading the ten fields of 0.2.0
-- by name or position reads them as before.
-- Striped stock: a popular sku's units split over rows of
-- checkout.inventory_stripes (checkout_stripe(), checkout_rebalance()), each
-- reservation row naming the stripe it took from (0: the inventory row, where
-- every 0.2.0 reservation is), and checkout.stock with every sku's totals.
-- New: checkout.table_access(), where the direct path is in use and why not.
--
-- Live locks keep working across the update: their reservations become
-- stripe 0 of their sku, which is where they are, and the 0.3.0 library also
-- runs against the 0.2.0 schema (unstriped, its status row of ten fields)
-- until this script runs.

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

-- ---- striped stock ----

CREATE TABLE checkout.inventory_stripes (
    sku      text    NOT NULL REFERENCES checkout.inventory ON DELETE CASCADE,
    stripe   integer NOT NULL CONSTRAINT inventory_stripes_stripe_check CHECK (stripe OPERATOR(pg_catalog.>=) 1),
    on_hand  bigint  NOT NULL,
    reserved bigint  NOT NULL DEFAULT 0,
    CONSTRAINT inventory_stripes_reserved_within_on_hand
        CHECK (reserved OPERATOR(pg_catalog.>=) 0::bigint AND reserved OPERATOR(pg_catalog.<=) on_hand),
    PRIMARY KEY (sku, stripe)
) WITH (fillfactor = 50);   -- room on the page keeps a stripe's updates HOT

-- every reservation so far holds units of its sku's inventory row: stripe 0
ALTER TABLE checkout.reservations
    ADD COLUMN stripe integer NOT NULL DEFAULT 0
        CONSTRAINT reservations_stripe_check CHECK (stripe OPERATOR(pg_catalog.>=) 0),
    DROP CONSTRAINT reservations_pkey,
    ADD PRIMARY KEY (lock_id, sku, stripe);

SELECT pg_catalog.pg_extension_config_dump('checkout.inventory_stripes', '');

CREATE FUNCTION checkout.inventory_restock()
RETURNS trigger
AS 'MODULE_PATHNAME', 'checkout_inventory_restock'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE TRIGGER inventory_restock BEFORE UPDATE OF on_hand ON checkout.inventory
    FOR EACH ROW EXECUTE FUNCTION checkout.inventory_restock();

-- Splits a sku's units over `stripes` rows (1: back into its inventory row);
-- returns the sku's stripe count.
CREATE FUNCTION @extschema@.checkout_stripe(sku text, stripes integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'checkout_stripe'
LANGUAGE C VOLATILE SECURITY DEFINER;

-- Spreads each striped sku's available units evenly over its stripes and
-- folds its totals into its inventory row (the worker does it too); returns
-- how many skus it rebalanced.
CREATE FUNCTION @extschema@.checkout_rebalance(sku text DEFAULT NULL)
RETURNS integer
AS 'MODULE_PATHNAME', 'checkout_rebalance'
LANGUAGE C VOLATILE SECURITY DEFINER;

-- Every sku's stock as it is: its inventory row, or for a striped sku the sums
-- of its stripes (its inventory row holds them as of the last fold).
CREATE VIEW checkout.stock AS
    SELECT i.sku,
           COALESCE(s.on_hand, i.on_hand) AS on_hand,
           COALESCE(s.reserved, i.reserved) AS reserved,
           COALESCE(s.on_hand, i.on_hand) OPERATOR(pg_catalog.-) COALESCE(s.reserved, i.reserved) AS available,
           i.unit_price,
           COALESCE(s.stripes, 1) AS stripes
    FROM checkout.inventory i
    LEFT JOIN (SELECT t.sku, pg_catalog.sum(t.on_hand)::bigint AS on_hand,
                      pg_catalog.sum(t.reserved)::bigint AS reserved, pg_catalog.count(*)::integer AS stripes
               FROM checkout.inventory_stripes t GROUP BY t.sku) s
           ON s.sku OPERATOR(pg_catalog.=) i.sku;

CREATE OR REPLACE FUNCTION @extschema@.checkout_monitor(hours integer DEFAULT 24)
RETURNS TABLE (started bigint, completed bigint, failed bigint, expired bigint, cancelled bigint,
               active bigint, success_rate numeric, failures_by_phase jsonb, failures_by_code jsonb,
               duration_p50 interval, duration_p95 interval, duration_max interval,
               price_drift_warnings bigint, active_locks bigint, overdue_locks bigint,
               oldest_active_age interval, units_reserved bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    since timestamptz;
BEGIN
    IF hours IS NULL OR hours < 1 THEN
        RAISE EXCEPTION 'hours must be at least 1'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('checkout_monitor(%s)', COALESCE(hours::text, 'NULL'));
    END IF;
    -- more than a century: everything (and no timestamp overflow)
    since := CASE WHEN hours > 876000 THEN '-infinity'::timestamptz
                  ELSE pg_catalog.now() - pg_catalog.make_interval(hours => hours) END;
    RETURN QUERY
    WITH w AS MATERIALIZED (
        SELECT l.state, l.failed_phase, l.error_code, l.finished_at - l.created_at AS took
        FROM checkout.locks l
        WHERE l.created_at >= since
    ), totals AS (
        SELECT pg_catalog.count(*) AS started,
               pg_catalog.count(*) FILTER (WHERE w.state = 'completed') AS completed,
               pg_catalog.count(*) FILTER (WHERE w.state = 'failed') AS failed,
               pg_catalog.count(*) FILTER (WHERE w.state = 'expired') AS expired,
               pg_catalog.count(*) FILTER (WHERE w.state = 'cancelled') AS cancelled,
               pg_catalog.count(*) FILTER (WHERE w.state = 'active') AS active,
               pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY w.took)
                   FILTER (WHERE w.state = 'completed') AS p50,
               pg_catalog.percentile_cont(0.95) WITHIN GROUP (ORDER BY w.took)
                   FILTER (WHERE w.state = 'completed') AS p95,
               pg_catalog.max(w.took) FILTER (WHERE w.state = 'completed') AS pmax
        FROM w
    )
    SELECT t.started, t.completed, t.failed, t.expired, t.cancelled, t.active,
           pg_catalog.round(t.completed::numeric / NULLIF(t.started - t.active, 0), 4),
           (SELECT COALESCE(pg_catalog.jsonb_object_agg(f.k, f.n), '{}'::jsonb)
            FROM (SELECT w.failed_phase::text AS k, pg_catalog.count(*) AS n FROM w
                  WHERE w.state IN ('failed', 'expired') AND w.failed_phase IS NOT NULL
                  GROUP BY 1) f),
           (SELECT COALESCE(pg_catalog.jsonb_object_agg(f.k, f.n), '{}'::jsonb)
            FROM (SELECT w.error_code AS k, pg_catalog.count(*) AS n FROM w
                  WHERE w.state IN ('failed', 'expired') AND w.error_code IS NOT NULL
                  GROUP BY 1) f),
           t.p50, t.p95, t.pmax,
           (SELECT pg_catalog.count(*) FROM checkout.price_snapshots s
            WHERE s.drift_percent <> 0 AND s.taken_at >= since),
           a.n, a.overdue, pg_catalog.now() - a.oldest,
           (SELECT COALESCE(pg_catalog.sum(k.reserved), 0)::bigint FROM checkout.stock k)
    FROM totals t,
         (SELECT pg_catalog.count(*) AS n,
                 pg_catalog.count(*) FILTER (WHERE l.expires_at <= pg_catalog.now()) AS overdue,
                 pg_catalog.min(l.created_at) AS oldest
          FROM checkout.locks l WHERE l.state = 'active') a;
END
$$;

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
                   FROM checkout.reservations r WHERE r.stripe = 0 GROUP BY r.sku) r ON r.sku = i.sku
        WHERE NOT EXISTS (SELECT 1 FROM checkout.inventory_stripes t WHERE t.sku = i.sku)
          AND i.reserved <> COALESCE(r.held, 0)
      UNION ALL
        SELECT 'ledger_reserved_matches_reservations', t.sku || ' stripe ' || t.stripe,
               pg_catalog.format('the stripe reserves %s but reservations hold %s',
                                 t.reserved, COALESCE(r.held, 0))
        FROM checkout.inventory_stripes t
        LEFT JOIN (SELECT r.sku, r.stripe, pg_catalog.sum(r.quantity) AS held
                   FROM checkout.reservations r WHERE r.stripe > 0 GROUP BY r.sku, r.stripe) r
               ON r.sku = t.sku AND r.stripe = t.stripe
        WHERE t.reserved <> COALESCE(r.held, 0)
      UNION ALL
        SELECT 'reservation_of_missing_stripe', r.lock_id::text,
               pg_catalog.format('it holds %s of %s in stripe %s, which the sku does not have',
                                 r.quantity, r.sku, r.stripe)
        FROM checkout.reservations r
        WHERE CASE WHEN r.stripe = 0
                   THEN EXISTS (SELECT 1 FROM checkout.inventory_stripes t WHERE t.sku = r.sku)
                   ELSE NOT EXISTS (SELECT 1 FROM checkout.inventory_stripes t
                                    WHERE t.sku = r.sku AND t.stripe = r.stripe) END
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

CREATE OR REPLACE VIEW checkout.active_locks AS
    SELECT l.lock_id, l.cart_id, l.session_id, l.phase, l.created_at, l.expires_at,
           pg_catalog.now() OPERATOR(pg_catalog.-) l.created_at AS age,
           l.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() AS overdue,
           COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('sku', r.sku, 'quantity', r.quantity)
                                                 ORDER BY r.sku)
                     FROM (SELECT r.sku, pg_catalog.sum(r.quantity)::bigint AS quantity
                           FROM checkout.reservations r
                           WHERE r.lock_id OPERATOR(pg_catalog.=) l.lock_id GROUP BY r.sku) r),
                    '[]'::jsonb) AS reservations
    FROM checkout.locks l
    WHERE l.state OPERATOR(pg_catalog.=) 'active'::checkout.lock_state;

CREATE OR REPLACE VIEW checkout.stuck_reservations AS
    SELECT r.lock_id, l.cart_id, l.state, l.expires_at, r.sku, r.quantity, r.reserved_at,
           CASE WHEN l.state OPERATOR(pg_catalog.<>) 'active'::checkout.lock_state
                THEN 'lock is ' OPERATOR(pg_catalog.||) l.state::text
                ELSE 'lock is overdue' END AS reason,
           r.stripe
    FROM checkout.reservations r
    JOIN checkout.locks l ON l.lock_id OPERATOR(pg_catalog.=) r.lock_id
    WHERE l.state OPERATOR(pg_catalog.<>) 'active'::checkout.lock_state
       OR l.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now();

CREATE OR REPLACE VIEW checkout.stats AS
    SELECT l.locks_total, l.locks_active, l.locks_completed, l.locks_failed, l.locks_expired,
           l.locks_cancelled, i.skus, i.units_on_hand, i.units_reserved,
           (SELECT pg_catalog.count(*) FROM checkout.reservations) AS reservations,
           (SELECT pg_catalog.count(*) FROM checkout.price_snapshots s
            WHERE s.drift_percent OPERATOR(pg_catalog.<>) 0) AS price_drift_warnings,
           (SELECT pg_catalog.count(*) FROM checkout.compensations c
            WHERE c.resolved_at IS NULL) AS compensations_open
    FROM (SELECT pg_catalog.count(*) AS locks_total,
                 pg_catalog.count(*) FILTER (WHERE state OPERATOR(pg_catalog.=) 'active'::checkout.lock_state) AS locks_active,
                 pg_catalog.count(*) FILTER (WHERE state OPERATOR(pg_catalog.=) 'completed'::checkout.lock_state) AS locks_completed,
                 pg_catalog.count(*) FILTER (WHERE state OPERATOR(pg_catalog.=) 'failed'::checkout.lock_state) AS locks_failed,
                 pg_catalog.count(*) FILTER (WHERE state OPERATOR(pg_catalog.=) 'expired'::checkout.lock_state) AS locks_expired,
                 pg_catalog.count(*) FILTER (WHERE state OPERATOR(pg_catalog.=) 'cancelled'::checkout.lock_state) AS locks_cancelled
          FROM checkout.locks) l,
         (SELECT pg_catalog.count(*) AS skus,
                 COALESCE(pg_catalog.sum(on_hand), 0)::bigint AS units_on_hand,
                 COALESCE(pg_catalog.sum(reserved), 0)::bigint AS units_reserved
          FROM checkout.stock) i;

REVOKE ALL ON checkout.inventory_stripes, checkout.stock FROM PUBLIC;
REVOKE ALL ON FUNCTION checkout.inventory_restock(),
    @extschema@.checkout_stripe(text, integer), @extschema@.checkout_rebalance(text) FROM PUBLIC;
GRANT SELECT ON checkout.stock TO checkout_app;
GRANT SELECT ON checkout.inventory_stripes, checkout.stock TO checkout_admin;
GRANT EXECUTE ON FUNCTION @extschema@.checkout_stripe(text, integer), @extschema@.checkout_rebalance(text)
    TO checkout_admin;
