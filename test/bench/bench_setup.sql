-- make bench: the extension, the catalog it sells from, and the DML floor.
--
-- The floor (schema "floor") holds tables equivalent to the extension's: the
-- same columns with their PRIMARY KEY, UNIQUE, FOREIGN KEY and CHECK
-- constraints, and on floor.locks only the two indexes a correct checkout
-- needs (one active lock per cart; active locks by deadline, for expiry).  It
-- is defined here, not copied from checkout.*, so it stays the same yardstick
-- whatever the extension's own schema becomes.
--
-- Both sides sell from the same catalog: :nskus skus S-1..S-n of :stock units,
-- and the hot sku S-0 of :hot_stock units, all at price 100.
-- psql variables: nskus, stock, hot_stock.
SET client_min_messages = warning;
CREATE EXTENSION checkout;

-- The application's role: calls the API (checkout_app) and writes the floor.
-- It may read checkout.locks for the primary-key SELECT the status is held
-- against.
-- (cluster-wide: bench-long sets up a second database)
SELECT 'CREATE ROLE bench_app LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_app') \gexec
GRANT checkout_app TO bench_app;
GRANT SELECT ON checkout.locks TO bench_app;

INSERT INTO checkout.inventory (sku, on_hand, unit_price)
SELECT 'S-' || g, :stock, 100 FROM generate_series(1, :nskus) g
UNION ALL SELECT 'S-0', :hot_stock, 100;

CREATE SCHEMA floor AUTHORIZATION bench_app;
SET ROLE bench_app;
CREATE TYPE floor.lock_state AS ENUM ('active', 'completed', 'failed', 'expired', 'cancelled');
CREATE TYPE floor.phase AS ENUM ('cart_validation', 'inventory_reservation', 'price_lock',
    'payment_authorization', 'order_creation', 'payment_capture', 'stock_commit');

CREATE TABLE floor.inventory (
    sku        text   PRIMARY KEY,
    on_hand    bigint NOT NULL DEFAULT 0,
    reserved   bigint NOT NULL DEFAULT 0,
    unit_price bigint NOT NULL DEFAULT 0,
    CHECK (reserved >= 0 AND reserved <= on_hand),
    CHECK (unit_price >= 0)
);
CREATE TABLE floor.locks (
    lock_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cart_id           text   NOT NULL,
    session_id        text   NOT NULL,
    state             floor.lock_state NOT NULL DEFAULT 'active',
    phase             floor.phase,
    exclusive         boolean NOT NULL DEFAULT true,
    idempotency_key   text,
    gateway           text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    total             bigint,
    order_ref         text,
    auth_reference    text,
    auth_amount       bigint,
    capture_reference text,
    capture_amount    bigint,
    failed_phase      floor.phase,
    error_code        text,
    error_message     text,
    CHECK (expires_at > created_at),
    CHECK ((state = 'active') = (finished_at IS NULL))
);
CREATE UNIQUE INDEX ON floor.locks (cart_id) WHERE state = 'active' AND exclusive;
CREATE INDEX ON floor.locks (expires_at) WHERE state = 'active';
CREATE TABLE floor.lock_lines (
    lock_id    bigint NOT NULL REFERENCES floor.locks ON DELETE CASCADE,
    line_no    integer NOT NULL,
    line_id    text   NOT NULL,
    sku        text   NOT NULL,
    quantity   bigint NOT NULL CHECK (quantity >= 1),
    cart_price bigint NOT NULL CHECK (cart_price >= 0),
    PRIMARY KEY (lock_id, line_id),
    UNIQUE (lock_id, line_no)
);
CREATE TABLE floor.reservations (
    lock_id     bigint NOT NULL REFERENCES floor.locks,
    sku         text   NOT NULL REFERENCES floor.inventory,
    quantity    bigint NOT NULL CHECK (quantity > 0),
    reserved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lock_id, sku)
);
CREATE INDEX ON floor.reservations (sku);
CREATE TABLE floor.price_snapshots (
    lock_id       bigint NOT NULL REFERENCES floor.locks ON DELETE CASCADE,
    line_id       text   NOT NULL,
    sku           text   NOT NULL,
    quantity      bigint NOT NULL,
    cart_price    bigint NOT NULL,
    locked_price  bigint NOT NULL,
    drift_percent numeric,
    taken_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lock_id, line_id)
);
CREATE TABLE floor.orders (
    order_ref    text   PRIMARY KEY,
    lock_id      bigint NOT NULL UNIQUE REFERENCES floor.locks,
    cart_id      text   NOT NULL,
    total        bigint NOT NULL,
    source       text   NOT NULL CHECK (source IN ('checkout', 'application')),
    status       text   NOT NULL DEFAULT 'created' CHECK (status IN ('created', 'cancelled')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    cancelled_at timestamptz
);
INSERT INTO floor.inventory (sku, on_hand, unit_price)
SELECT sku, on_hand, unit_price FROM checkout.inventory;
RESET ROLE;

-- What each side started with, for the "units sold = on_hand decrease" check.
CREATE SCHEMA bench;
CREATE TABLE bench.initial (sku text PRIMARY KEY, stock bigint NOT NULL);
INSERT INTO bench.initial SELECT sku, on_hand FROM checkout.inventory;
VACUUM ANALYZE;
