-- checkout 0.1.0: checkout and order locking inside the database.
--
-- The API functions live in the extension's schema (@extschema@, public by
-- default); every table and type lives in schema "checkout".  Stock moves only
-- through the API: checkout_app may read the ledger but never write it, and
-- nobody (not even checkout_admin) may write the "reserved" column directly.
--
-- Every name below is schema-qualified and no function trusts the caller's
-- search_path (CVE-2018-1058): SECURITY DEFINER functions pin it.

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
    error_message text
);

-- The stock and current-price ledger.  "reserved" is only ever changed by the
-- extension; the constraint makes overselling impossible even for a bug.
CREATE TABLE checkout.inventory (
    sku        text   PRIMARY KEY,
    on_hand    bigint NOT NULL DEFAULT 0,
    reserved   bigint NOT NULL DEFAULT 0,
    unit_price bigint NOT NULL DEFAULT 0,
    CONSTRAINT inventory_reserved_within_on_hand CHECK (reserved >= 0 AND reserved <= on_hand),
    CONSTRAINT inventory_unit_price_not_negative CHECK (unit_price >= 0)
);

CREATE TABLE checkout.locks (
    lock_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cart_id           text   NOT NULL,
    session_id        text   NOT NULL,
    state             checkout.lock_state NOT NULL DEFAULT 'active',
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
    CONSTRAINT locks_expires_after_creation CHECK (expires_at > created_at),
    CONSTRAINT locks_finished_when_terminal CHECK ((state = 'active') = (finished_at IS NULL))
);

CREATE UNIQUE INDEX locks_one_active_per_cart ON checkout.locks (cart_id)
    WHERE state = 'active' AND exclusive;
CREATE INDEX locks_active_by_cart ON checkout.locks (cart_id) WHERE state = 'active';
CREATE INDEX locks_due ON checkout.locks (expires_at) WHERE state = 'active';
CREATE UNIQUE INDEX locks_idempotency ON checkout.locks (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX locks_created_at ON checkout.locks (created_at);
CREATE INDEX locks_finished_at ON checkout.locks (finished_at) WHERE finished_at IS NOT NULL;

-- The cart as given to checkout_start, stored once so no phase re-parses JSON.
CREATE TABLE checkout.lock_lines (
    lock_id    bigint NOT NULL REFERENCES checkout.locks ON DELETE CASCADE,
    line_no    integer NOT NULL,
    line_id    text   NOT NULL,
    sku        text   NOT NULL,
    quantity   bigint NOT NULL CHECK (quantity >= 1),
    cart_price bigint NOT NULL CHECK (cart_price >= 0),
    PRIMARY KEY (lock_id, line_id),
    UNIQUE (lock_id, line_no)
);

-- Stock held by a lock, one row per sku.  Deleted when released or sold, in
-- the same statement that moves the ledger.  No cascade from locks: deleting a
-- lock that still holds stock must fail rather than leak the reservation.
CREATE TABLE checkout.reservations (
    lock_id     bigint NOT NULL REFERENCES checkout.locks,
    sku         text   NOT NULL REFERENCES checkout.inventory,
    quantity    bigint NOT NULL CHECK (quantity > 0),
    reserved_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (lock_id, sku)
);
CREATE INDEX reservations_sku ON checkout.reservations (sku);

-- Prices locked by the price_lock phase; kept as an audit trail forever.
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
CREATE INDEX price_snapshots_taken_at ON checkout.price_snapshots (taken_at) WHERE drift_percent <> 0;

CREATE TABLE checkout.orders (
    order_ref    text   PRIMARY KEY,
    lock_id      bigint NOT NULL UNIQUE REFERENCES checkout.locks,
    cart_id      text   NOT NULL,
    total        bigint NOT NULL,
    source       text   NOT NULL CHECK (source IN ('checkout', 'application')),
    status       text   NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'cancelled')),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    cancelled_at timestamptz
);

-- Work the application must do at its payment gateway after a rollback:
-- void an authorisation, refund a capture.  The application marks a row done
-- by setting resolved_at.
CREATE TABLE checkout.compensations (
    compensation_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lock_id         bigint NOT NULL REFERENCES checkout.locks,
    kind            text   NOT NULL CHECK (kind IN ('void_required', 'refund_required')),
    reference       text   NOT NULL,
    amount          bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    resolved_at     timestamptz
);
CREATE INDEX compensations_open ON checkout.compensations (created_at) WHERE resolved_at IS NULL;
CREATE INDEX compensations_lock ON checkout.compensations (lock_id);

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
SELECT pg_catalog.pg_extension_config_dump('checkout.price_snapshots', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.orders', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.compensations', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.events', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.locks_lock_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.compensations_compensation_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('checkout.events_event_id_seq', '');

-- ---------------------------------------------------------------------------
-- Application API (C).  SECURITY DEFINER so checkout_app can move stock it
-- cannot write directly; search_path pinned.
-- ---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.checkout_start(cart_id text, session_id text, lines jsonb,
                                           ttl interval DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_start'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.checkout_advance(lock_id bigint, session_id text, payload jsonb DEFAULT '{}',
                                             until checkout.phase DEFAULT NULL)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_advance'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.checkout_status(lock_id bigint, session_id text)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_status'
LANGUAGE C STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.checkout_extend(lock_id bigint, session_id text, by interval)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_extend'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.checkout_cancel(lock_id bigint, session_id text)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_cancel'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.checkout_fail(lock_id bigint, session_id text, reason text)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_fail'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION checkout.protect_cart()
RETURNS trigger
AS 'MODULE_PATHNAME', 'checkout_protect_cart'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- ---------------------------------------------------------------------------
-- Admin API (C)
-- ---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.checkout_cleanup_expired(batch integer DEFAULT 1000)
RETURNS integer
AS 'MODULE_PATHNAME', 'checkout_cleanup_expired'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION @extschema@.checkout_release(lock_id bigint, reason text)
RETURNS checkout.status
AS 'MODULE_PATHNAME', 'checkout_release'
LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- ---------------------------------------------------------------------------
-- Monitoring and verification (SQL)
-- ---------------------------------------------------------------------------

-- MONITORING-BEGIN (owned by the observability work; keep edits inside)
CREATE FUNCTION @extschema@.checkout_monitor(hours integer DEFAULT 24)
RETURNS TABLE (metric text, value numeric, detail jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT NULL::text, NULL::numeric, NULL::jsonb WHERE false $$;

CREATE FUNCTION @extschema@.checkout_verify()
RETURNS TABLE (invariant text, subject text, detail text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT NULL::text, NULL::text, NULL::text WHERE false $$;
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
    @extschema@.checkout_verify()
FROM PUBLIC;

GRANT USAGE ON SCHEMA checkout TO checkout_app, checkout_admin;
GRANT SELECT ON checkout.inventory TO checkout_app;
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
    @extschema@.checkout_verify()
TO checkout_admin;
