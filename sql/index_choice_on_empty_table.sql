-- The backend keeps its statements' generic plans from the first call, which
-- on a new installation is made while checkout.locks is empty.  There the
-- costs of the partial indexes on state = 'active' tie, and a plan that
-- looked up a cart through locks_due would go on scanning every active lock
-- for each checkout_start once there are thousands.  locks_due's predicate
-- names expires_at so only queries on deadlines can use it.  Shown on an
-- empty, never-vacuumed copy of the table with the same indexes, planned as
-- the C code plans them (generic plans).
BEGIN;
CREATE TEMP TABLE l (LIKE checkout.locks INCLUDING INDEXES);
SET LOCAL plan_cache_mode = force_generic_plan;
-- lock_create: does the cart have an active lock?
PREPARE cart_has_lock(text) AS
    SELECT 1 FROM l o WHERE o.cart_id = $1 AND o.state = 'active';
EXPLAIN (COSTS OFF) EXECUTE cart_has_lock('c');
-- lock_fetch_cart: the cart's active locks
PREPARE cart_locks(text) AS
    SELECT lock_id FROM l WHERE cart_id = $1 AND state = 'active' ORDER BY lock_id FOR UPDATE;
EXPLAIN (COSTS OFF) EXECUTE cart_locks('c');
-- the sweeper's queries still have their index
PREPARE due(int) AS
    SELECT lock_id FROM l WHERE state = 'active' AND expires_at <= pg_catalog.now()
    ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED;
EXPLAIN (COSTS OFF) EXECUTE due(10);
EXPLAIN (COSTS OFF) SELECT pg_catalog.min(expires_at) FROM l WHERE state = 'active';
ROLLBACK;
