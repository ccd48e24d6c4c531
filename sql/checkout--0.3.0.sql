-- checkout 0.3.0: checkout and order locking inside the database.
--
-- The API functions live in the extension's schema (@extschema@, public by
-- default); every table and type lives in schema "checkout".  Stock moves only
-- through the API: checkout_app may read the ledger but never write it, and
-- nobody (not even checkout_admin) may write the "reserved" column directly.
--
-- Every name below is schema-qualified and no function trusts the caller's
-- search_path (CVE-2018-1058): SECURITY DEFINER functions pin it.  Every
-- expression PostgreSQL stores while this script runs (CHECK constraints,
-- index predicates and expressions, defaults, views) spells its operators
-- OPERATOR(pg_catalog.x) with operands of the exact types of a pg_catalog
-- operator: otherwise an exact-match operator that a database owner planted
-- in a schema on the search_path (public) would win over pg_catalog's and be
-- stored, to run later as the function owner.  Function bodies run with
-- search_path = pg_catalog, pg_temp, where no other schema's names resolve.

\echo Use "CREATE EXTENSION checkout" to load this file. \quit

-- Roles are cluster-wide, so they may exist from another database already.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'checkout_app') THEN
        CREATE ROLE checkout_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'checkout_admin') THEN
        CREATE ROLE checkout_admin NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('checkout_admin', 'checkout_app', 'MEMBER') THEN
        GRANT checkout_app TO checkout_admin;
    END IF;
END
$roles$;

-- The SQL API works without preloading; expiry then happens only on touch
-- and through checkout_cleanup_expired().  (A WARNING: CREATE EXTENSION
-- hides the script's notices.)
DO $preload$
BEGIN
    IF NOT ('checkout' OPERATOR(pg_catalog.=) ANY (pg_catalog.string_to_array(
            pg_catalog.replace(pg_catalog.current_setting('shared_preload_libraries'), ' ', ''), ','))) THEN
        RAISE WARNING 'checkout is not in shared_preload_libraries: no background worker will expire abandoned checkouts'
            USING HINT = 'Add checkout to shared_preload_libraries and this database to checkout.database, or run checkout_cleanup_expired() from a scheduler.';
    END IF;
END
$preload$;

CREATE SCHEMA checkout;
COMMENT ON SCHEMA checkout IS 'data of the checkout extension';

CREATE TYPE checkout.lock_state AS ENUM ('active', 'completed', 'failed', 'expired', 'cancelled');

CREATE TYPE checkout.phase AS ENUM (
    'cart_validation',
    'inventory_reservation',
    'price_lock',
    'payment_authorization',
    'order_creation',
    'payment_capture',
    'stock_commit'
);

CREATE TYPE checkout.status AS (
    lock_id       bigint,
    cart_id       text,
    state         checkout.lock_state,
    phase         checkout.phase,
    expires_at    timestamptz,
    total         bigint,
    order_ref     text,
    failed_phase  checkout.phase,
    error_code    text,
    error_message text,
    -- what this call did (a retry gets the same row otherwise)
    created       boolean,          -- checkout_start made the lock (false: it was there)
    phases_run    checkout.phase[], -- the phases this call completed, in order
    ended         boolean           -- this call moved the lock out of active
);

-- The stock and current-price ledger.  "reserved" is only ever changed by the
-- extension; the constraint makes overselling impossible even for a bug.
CREATE TABLE checkout.inventory (
    sku        text   PRIMARY KEY,
    on_hand    bigint NOT NULL DEFAULT 0,
    reserved   bigint NOT NULL DEFAULT 0,
    unit_price bigint NOT NULL DEFAULT 0,
    CONSTRAINT inventory_reserved_within_on_hand
        CHECK (reserved OPERATOR(pg_catalog.>=) 0::bigint AND reserved OPERATOR(pg_catalog.<=) on_hand),
    CONSTRAINT inventory_unit_price_not_negative CHECK (unit_price OPERATOR(pg_catalog.>=) 0::bigint)
);

CREATE TABLE checkout.locks (
    lock_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cart_id           text   NOT NULL,
    session_id        text   NOT NULL,
    state             checkout.lock_state NOT NULL DEFAULT 'active'::checkout.lock_state,
    phase             checkout.phase,
    -- false when taken with checkout.prevent_concurrent off: such locks do not
    -- claim the cart, so they stay out of the one-active-lock-per-cart index
    exclusive         boolean NOT NULL DEFAULT true,
    idempotency_key   text,
    gateway           text,
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    expires_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    total             bigint,
    order_ref         text,
    auth_reference    text,
    auth_amount       bigint,
    capture_reference text,
    capture_amount    bigint,
    failed_phase      checkout.phase,
    error_code        text,
    error_message     text,
    CONSTRAINT locks_expires_after_creation CHECK (expires_at OPERATOR(pg_catalog.>) created_at),
    CONSTRAINT locks_finished_when_terminal
        CHECK ((state OPERATOR(pg_catalog.=) 'active'::checkout.lock_state) OPERATOR(pg_catalog.=) (finished_at IS NULL))
) WITH (fillfactor = 80);   -- room on the page keeps a call's update of its lock HOT

-- Only the indexes the queries need, with predicates on `state` alone: the
-- updates a checkout makes while active (phase, total, payments, order) touch
-- no indexed column, so they stay HOT.
--
-- One index serves both "at most one exclusive active lock per cart" and
-- finding a cart's active locks: exclusive locks share the key (cart_id, 0),
-- the locks taken with checkout.prevent_concurrent off use their own id.
CREATE UNIQUE INDEX locks_active_cart ON checkout.locks
    (cart_id, (CASE WHEN exclusive THEN 0::bigint ELSE lock_id END))
    WHERE state OPERATOR(pg_catalog.=) 'active'::checkout.lock_state;
-- `expires_at IS NOT NULL` (always true) keeps this index out of reach of a
-- query on a cart's active locks, which names no deadline: a plan kept from
-- when the table was empty (costs tie there) must not scan every active lock
-- of this index for one cart.  A query on deadlines implies the predicate.
CREATE INDEX locks_due ON checkout.locks (expires_at)
    WHERE state OPERATOR(pg_catalog.=) 'active'::checkout.lock_state AND expires_at IS NOT NULL;
CREATE UNIQUE INDEX locks_idempotency ON checkout.locks (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX locks_created_at ON checkout.locks (created_at);

-- The cart as given to checkout_start, stored once so no phase re-parses JSON.
CREATE TABLE checkout.lock_lines (
    lock_id    bigint NOT NULL REFERENCES checkout.locks ON DELETE CASCADE,
    line_no    integer NOT NULL,
    line_id    text   NOT NULL,
    sku        text   NOT NULL,
    quantity   bigint NOT NULL CONSTRAINT lock_lines_quantity_check CHECK (quantity OPERATOR(pg_catalog.>=) 1::bigint),
    cart_price bigint NOT NULL CONSTRAINT lock_lines_cart_price_check CHECK (cart_price OPERATOR(pg_catalog.>=) 0::bigint),
    PRIMARY KEY (lock_id, line_id),
    UNIQUE (lock_id, line_no)
);

-- A popular sku's units split over stripes (checkout_stripe()), so that its
-- buyers do not all queue on one row.  A striped sku's units are here, and
-- its row of checkout.inventory holds its totals as of the last fold (a
-- rebalance, a restock): checkout.stock shows every sku's totals as they
-- are.  A sku without rows here has one stripe: its inventory row.
CREATE TABLE checkout.inventory_stripes (
    sku      text    NOT NULL REFERENCES checkout.inventory ON DELETE CASCADE,
    stripe   integer NOT NULL CONSTRAINT inventory_stripes_stripe_check CHECK (stripe OPERATOR(pg_catalog.>=) 1),
    on_hand  bigint  NOT NULL,
    reserved bigint  NOT NULL DEFAULT 0,
    CONSTRAINT inventory_stripes_reserved_within_on_hand
        CHECK (reserved OPERATOR(pg_catalog.>=) 0::bigint AND reserved OPERATOR(pg_catalog.<=) on_hand),
    PRIMARY KEY (sku, stripe)
) WITH (fillfactor = 50);   -- room on the page keeps a stripe's updates HOT

-- Stock held by a lock, one row per sku and stripe it took from.  Deleted
-- when released or sold, in the same statement that moves the ledger.  No
-- cascade from locks: deleting a lock that still holds stock must fail
-- rather than leak the reservation.
CREATE TABLE checkout.reservations (
    lock_id     bigint NOT NULL REFERENCES checkout.locks,
    sku         text   NOT NULL REFERENCES checkout.inventory,
    quantity    bigint NOT NULL CONSTRAINT reservations_quantity_check CHECK (quantity OPERATOR(pg_catalog.>) 0::bigint),
    reserved_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- 0: the sku's inventory row; 1 and up: that stripe of inventory_stripes
    stripe      integer NOT NULL DEFAULT 0
                CONSTRAINT reservations_stripe_check CHECK (stripe OPERATOR(pg_catalog.>=) 0),
    PRIMARY KEY (lock_id, sku, stripe)
);
CREATE INDEX reservations_sku ON checkout.reservations (sku);

-- Prices locked by the price_lock phase; kept as an audit trail forever,
-- also when the phase fails on drift (they show the refused prices).
CREATE TABLE checkout.price_snapshots (
    lock_id       bigint NOT NULL REFERENCES checkout.locks ON DELETE CASCADE,
    line_id       text   NOT NULL,
    sku           text   NOT NULL,
    quantity      bigint NOT NULL,
    cart_price    bigint NOT NULL,
    locked_price  bigint NOT NULL,
    -- percent; NULL when the cart said 0 and the price is now positive (unbounded)
    drift_percent numeric,
    taken_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (lock_id, line_id)
);
CREATE INDEX price_snapshots_taken_at ON checkout.price_snapshots (taken_at)
    WHERE drift_percent OPERATOR(pg_catalog.<>) 0::numeric;

CREATE TABLE checkout.orders (
    order_ref    text   PRIMARY KEY,
    lock_id      bigint NOT NULL UNIQUE REFERENCES checkout.locks,
    cart_id      text   NOT NULL,
    total        bigint NOT NULL,
    source       text   NOT NULL CONSTRAINT orders_source_check
                        CHECK (source OPERATOR(pg_catalog.=) ANY ('{checkout,application}'::text[])),
    status       text   NOT NULL DEFAULT 'created'::text CONSTRAINT orders_status_check
                        CHECK (status OPERATOR(pg_catalog.=) ANY ('{created,cancelled}'::text[])),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    cancelled_at timestamptz
);

-- Work the application must do at its payment gateway after a rollback:
-- void an authorisation, refund a capture.  The application marks a row done
-- by setting resolved_at.
CREATE TABLE checkout.compensations (
    compensation_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lock_id         bigint NOT NULL REFERENCES checkout.locks,
    kind            text   NOT NULL CONSTRAINT compensations_kind_check
                           CHECK (kind OPERATOR(pg_catalog.=) ANY ('{void_required,refund_required}'::text[])),
    reference       text   NOT NULL,
    amount          bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    resolved_at     timestamptz
);
CREATE INDEX compensations_open ON checkout.compensations (created_at) WHERE resolved_at IS NULL;
CREATE INDEX compensations_lock ON checkout.compensations (lock_id);

-- Gateway data the application passed with a payment ("metadata" of the
-- payload), as given; the extension stores it and never reads it.
CREATE TABLE checkout.payment_metadata (
    lock_id    bigint NOT NULL REFERENCES checkout.locks,
    phase      checkout.phase NOT NULL,
    metadata   jsonb  NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (lock_id, phase)
);

-- Event log when checkout.log_destination is 'table' or 'both'; pruned by the
-- worker after checkout.event_retention.
CREATE TABLE checkout.events (
    event_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    logged_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    event     text   NOT NULL,
    lock_id   bigint,
    cart_id   text,
    detail    jsonb  NOT NULL
);
CREATE INDEX events_lock ON checkout.events (lock_id);
CREATE INDEX events_logged_at ON checkout.events USING brin (logged_at);

-- pg_dump must carry the data, not just the definitions.
SELECT pg_catalog.pg_extension_config_dump('checkout.inventory', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.locks', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.lock_lines', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.reservations', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.inventory_stripes', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.price_snapshots', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.orders', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.compensations', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.events', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.payment_metadata', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.locks_lock_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.compensations_compensation_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.events_event_id_seq', '');

-- ---------------------------------------------------------------------------
-- Application API (C).  SECURITY DEFINER so checkout_app can move stock it
-- cannot write directly.  These pin the search path in C, not with a SET
-- clause: while they run SQL, pg_catalog is the only schema searched (not
-- even pg_temp), at a fraction of the cost of a SET clause per call.
-- ---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.checkout_start(cart_id text, session_id text, lines jsonb,
                                           ttl interval DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_start'
LANGUAGE C VOLATILE SECURITY DEFINER;

CREATE FUNCTION @extschema@.checkout_advance(lock_id bigint, session_id text, payload jsonb DEFAULT '{}',
                                             until checkout.phase DEFAULT NULL)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_advance'
LANGUAGE C VOLATILE SECURITY DEFINER;

CREATE FUNCTION @extschema@.checkout_status(lock_id bigint, session_id text)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_status'
LANGUAGE C STABLE SECURITY DEFINER;

CREATE FUNCTION @extschema@.checkout_extend(lock_id bigint, session_id text, by interval)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_extend'
LANGUAGE C VOLATILE SECURITY DEFINER;

CREATE FUNCTION @extschema@.checkout_cancel(lock_id bigint, session_id text)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_cancel'
LANGUAGE C VOLATILE SECURITY DEFINER;

CREATE FUNCTION @extschema@.checkout_fail(lock_id bigint, session_id text, reason text)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_fail'
LANGUAGE C VOLATILE SECURITY DEFINER;

CREATE FUNCTION checkout.protect_cart()
RETURNS trigger
AS 'MODULE_PATHNAME', 'checkout_protect_cart'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- A restock (UPDATE ... SET on_hand) of a striped sku: the change goes to its
-- stripes, and its inventory row gets the totals as they are now.
CREATE FUNCTION checkout.inventory_restock()
RETURNS trigger
AS 'MODULE_PATHNAME', 'checkout_inventory_restock'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE TRIGGER inventory_restock BEFORE UPDATE OF on_hand ON checkout.inventory
    FOR EACH ROW EXECUTE FUNCTION checkout.inventory_restock();

-- ---------------------------------------------------------------------------
-- Admin API (C)
-- ---------------------------------------------------------------------------

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

CREATE FUNCTION @extschema@.checkout_cleanup_expired(batch integer DEFAULT 1000)
RETURNS integer
AS 'MODULE_PATHNAME', 'checkout_cleanup_expired'
LANGUAGE C VOLATILE SECURITY DEFINER;

CREATE FUNCTION @extschema@.checkout_release(lock_id bigint, reason text)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_release'
LANGUAGE C VOLATILE SECURITY DEFINER;

-- Which of the extension's tables this backend reads and writes without
-- planned statements (the direct path), and why not where it does not: a
-- table the DBA changed, a privilege the functions' owner lacks, an executor
-- permission hook (pgaudit, sepgsql), checkout.direct_access = off.
CREATE FUNCTION checkout.table_access()
RETURNS TABLE (table_name text, direct boolean, reason text)
AS 'MODULE_PATHNAME', 'checkout_table_access'
LANGUAGE C VOLATILE SECURITY DEFINER;

-- ---------------------------------------------------------------------------
-- Monitoring and verification (SQL)
-- ---------------------------------------------------------------------------

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

-- MONITORING-BEGIN (owned by the observability work; keep edits inside)
-- Functions pin search_path (names inside are still schema-qualified).  Views
-- bind their operators when created, so they spell them OPERATOR(pg_catalog.x).
-- All of it is for checkout_admin only (grants at the end of this block).

-- One row: what happened to the checkouts started in the last `hours` hours
-- (locks with created_at in the window, found through locks_created_at),
-- price-drift warnings taken in the window (price_snapshots_taken_at), and
-- what is held right now (the partial indexes on state = 'active').
-- success_rate = completed / finished (finished = not active), NULL when
-- nothing finished; durations are created_at .. finished_at of the completed
-- checkouts; failures count failed and expired locks.
CREATE FUNCTION @extschema@.checkout_monitor(hours integer DEFAULT 24)
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

-- One row per broken invariant, ordered; no rows when all is well:
--   ledger_reserved_matches_reservations  inventory.reserved (a striped sku: a stripe's) <>
--                                         what checkout.reservations hold of it
--   reservation_of_missing_stripe         a reservation names a stripe its sku does not have
--   reservation_of_finished_lock          a lock that is no longer active still holds stock
--   active_lock_past_deadline             active and expires_at more than 5 minutes ago
--                                         (the worker, or a touch, should have expired it)
--   completed_lock_without_capture        completed, but no captured payment recorded
--   order_of_failed_lock_not_cancelled    the order of a failed/expired/cancelled lock is live
--   payment_without_compensation          a rolled-back lock's authorisation (capture) has no
--                                         void_required (refund_required) compensation
CREATE FUNCTION @extschema@.checkout_verify()
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

-- Keeps checkout_verify's look at rolled-back locks cheap on a long history.
-- (Its predicate names `state` only: one naming the payment columns would
-- make the payment updates of every active lock non-HOT.)
CREATE INDEX locks_rolled_back ON checkout.locks (lock_id)
    WHERE state OPERATOR(pg_catalog.<>) 'active'::checkout.lock_state
      AND state OPERATOR(pg_catalog.<>) 'completed'::checkout.lock_state;

-- What is held right now: every active lock with its reservations and age.
CREATE VIEW checkout.active_locks AS
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

-- Stock that should not be held any more: reservations of a lock that is no
-- longer active (a bug or a hand edit: docs/operations.md, "Stock not releasing"), or
-- of an active lock past its deadline (release with checkout_cleanup_expired()
-- or checkout_release(lock_id, reason)).
CREATE VIEW checkout.stuck_reservations AS
    SELECT r.lock_id, l.cart_id, l.state, l.expires_at, r.sku, r.quantity, r.reserved_at,
           CASE WHEN l.state OPERATOR(pg_catalog.<>) 'active'::checkout.lock_state
                THEN 'lock is ' OPERATOR(pg_catalog.||) l.state::text
                ELSE 'lock is overdue' END AS reason,
           r.stripe
    FROM checkout.reservations r
    JOIN checkout.locks l ON l.lock_id OPERATOR(pg_catalog.=) r.lock_id
    WHERE l.state OPERATOR(pg_catalog.<>) 'active'::checkout.lock_state
       OR l.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now();

-- Cumulative counters for an exporter (one row; scrape it, rate() the totals).
CREATE VIEW checkout.stats AS
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

REVOKE ALL ON FUNCTION @extschema@.checkout_monitor(integer), @extschema@.checkout_verify() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.checkout_monitor(integer), @extschema@.checkout_verify() TO checkout_admin;
REVOKE ALL ON checkout.active_locks, checkout.stuck_reservations, checkout.stats FROM PUBLIC;
GRANT SELECT ON checkout.active_locks, checkout.stuck_reservations, checkout.stats TO checkout_admin;
-- MONITORING-END

-- ---------------------------------------------------------------------------
-- Privileges: PUBLIC gets nothing.
-- ---------------------------------------------------------------------------

REVOKE ALL ON SCHEMA checkout FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA checkout FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA checkout FROM PUBLIC;
REVOKE ALL ON FUNCTION
    @extschema@.checkout_start(text, text, jsonb, interval, text),
    @extschema@.checkout_advance(bigint, text, jsonb, checkout.phase),
    @extschema@.checkout_status(bigint, text),
    @extschema@.checkout_extend(bigint, text, interval),
    @extschema@.checkout_cancel(bigint, text),
    @extschema@.checkout_fail(bigint, text, text),
    @extschema@.checkout_cleanup_expired(integer),
    @extschema@.checkout_release(bigint, text),
    @extschema@.checkout_monitor(integer),
    @extschema@.checkout_verify(),
    @extschema@.checkout_stripe(text, integer),
    @extschema@.checkout_rebalance(text)
FROM PUBLIC;

GRANT USAGE ON SCHEMA checkout TO checkout_app, checkout_admin;
GRANT SELECT ON checkout.inventory, checkout.stock TO checkout_app;
GRANT SELECT, UPDATE (resolved_at) ON checkout.compensations TO checkout_app;
GRANT EXECUTE ON FUNCTION
    @extschema@.checkout_start(text, text, jsonb, interval, text),
    @extschema@.checkout_advance(bigint, text, jsonb, checkout.phase),
    @extschema@.checkout_status(bigint, text),
    @extschema@.checkout_extend(bigint, text, interval),
    @extschema@.checkout_cancel(bigint, text),
    @extschema@.checkout_fail(bigint, text, text),
    checkout.protect_cart()
TO checkout_app;

-- The catalog side: load skus, set stock and prices; never "reserved".
GRANT INSERT (sku, on_hand, unit_price), UPDATE (on_hand, unit_price), DELETE
    ON checkout.inventory TO checkout_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA checkout TO checkout_admin;
GRANT EXECUTE ON FUNCTION
    @extschema@.checkout_cleanup_expired(integer),
    @extschema@.checkout_release(bigint, text),
    @extschema@.checkout_monitor(integer),
    @extschema@.checkout_verify(),
    @extschema@.checkout_stripe(text, integer),
    @extschema@.checkout_rebalance(text),
    checkout.table_access()
TO checkout_admin;
