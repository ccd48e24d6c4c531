#!/usr/bin/env bash
# Times the monitoring queries on a long history (not part of make test):
# MONITOR_LOCKS (default 1000000) historical locks spread evenly over
# MONITOR_DAYS (default 30) days — so checkout_monitor(24) sees 1/30 of them —
# with orders, price snapshots (2 % with drift), compensations for the
# rolled-back payments, and MONITOR_ACTIVE (default 2000) active locks holding
# stock.  Prints the best and median of MONITOR_RUNS (default 5) runs of each
# query, then the plan checkout_monitor(24) actually runs (auto_explain, with
# actual times).  Usage: bash test/bench/monitor_million.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

locks=${MONITOR_LOCKS:-1000000}
days=${MONITOR_DAYS:-30}
active=${MONITOR_ACTIVE:-2000}
runs=${MONITOR_RUNS:-5}

ensure_packages
build_install
start_cluster "shared_buffers = '512MB'" "work_mem = '16MB'" "maintenance_work_mem = '256MB'"

log_step "loading $locks historical locks over $days days and $active active ones"
t0=$(date +%s)
"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -v locks="$locks" -v days="$days" -v active="$active" <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION checkout;
INSERT INTO checkout.inventory (sku, on_hand, unit_price)
SELECT 'SKU-' || g, 1000000, 100 + g % 900 FROM generate_series(1, 1000) g;

-- history: 70 % completed, 15 % failed, 8 % expired, 7 % cancelled; created
-- evenly over the last :days days, finished 1 to 20 minutes later
INSERT INTO checkout.locks (cart_id, session_id, state, phase, created_at, expires_at, finished_at, total,
                            order_ref, auth_reference, auth_amount, capture_reference, capture_amount,
                            failed_phase, error_code, error_message, gateway)
SELECT 'cart-' || g, 'sess-' || (g % 50000),
       s.state, s.phase, c.created, c.created + interval '15 minutes',
       c.created + make_interval(secs => 60 + (g::bigint * 7919) % 1140), 1000,
       CASE WHEN s.state = 'completed' THEN 'CO-H' || g END,
       CASE WHEN s.state = 'completed' OR (s.state = 'failed' AND g % 3 = 0) THEN 'auth-' || g END,
       CASE WHEN s.state = 'completed' OR (s.state = 'failed' AND g % 3 = 0) THEN 1000 END,
       CASE WHEN s.state = 'completed' THEN 'cap-' || g END,
       CASE WHEN s.state = 'completed' THEN 1000 END,
       s.failed_phase, s.error_code, s.error_code, 'stripe'
FROM generate_series(1, :locks) g
CROSS JOIN LATERAL (SELECT now() - interval '1 minute' - (:days * interval '1 day') * g / :locks AS created) c
CROSS JOIN LATERAL (
    SELECT * FROM (VALUES
        ('completed'::checkout.lock_state, 'stock_commit'::checkout.phase, NULL::checkout.phase, NULL::text),
        ('failed', 'cart_validation', 'inventory_reservation', 'KC011'),
        ('failed', 'inventory_reservation', 'price_lock', 'KC012'),
        ('failed', 'payment_authorization', 'order_creation', 'KC014'),
        ('expired', 'price_lock', 'payment_authorization', 'KC015'),
        ('cancelled', 'price_lock', NULL, NULL)) v(state, phase, failed_phase, error_code)
    OFFSET CASE WHEN g % 100 < 70 THEN 0 WHEN g % 100 < 75 THEN 1 WHEN g % 100 < 80 THEN 2
                WHEN g % 100 < 85 THEN 3 WHEN g % 100 < 93 THEN 4 ELSE 5 END
    LIMIT 1) s;
-- the failed ones that were authorised were voided
INSERT INTO checkout.compensations (lock_id, kind, reference, amount, created_at, resolved_at)
SELECT lock_id, 'void_required', auth_reference, auth_amount, finished_at, finished_at + interval '1 minute'
FROM checkout.locks WHERE state = 'failed' AND auth_reference IS NOT NULL;
INSERT INTO checkout.orders (order_ref, lock_id, cart_id, total, source, created_at)
SELECT order_ref, lock_id, cart_id, total, 'checkout', finished_at FROM checkout.locks WHERE order_ref IS NOT NULL;
INSERT INTO checkout.price_snapshots (lock_id, line_id, sku, quantity, cart_price, locked_price, drift_percent, taken_at)
SELECT lock_id, '1', 'SKU-' || (1 + lock_id % 1000), 1, CASE WHEN lock_id % 50 = 0 THEN 1005 ELSE 1000 END, 1000,
       CASE WHEN lock_id % 50 = 0 THEN 0.4975 ELSE 0 END, created_at + interval '30 seconds'
FROM checkout.locks WHERE state = 'completed';

-- what is held now
INSERT INTO checkout.locks (cart_id, session_id, state, phase, created_at, expires_at)
SELECT 'live-' || g, 'live-' || g, 'active', 'price_lock', now() - make_interval(secs => g % 600),
       now() - make_interval(secs => g % 600) + interval '15 minutes'
FROM generate_series(1, :active) g;
INSERT INTO checkout.reservations (lock_id, sku, quantity)
SELECT lock_id, 'SKU-' || (1 + lock_id % 1000), 2 FROM checkout.locks WHERE state = 'active';
UPDATE checkout.inventory i SET reserved = r.q
FROM (SELECT sku, sum(quantity) AS q FROM checkout.reservations GROUP BY sku) r WHERE r.sku = i.sku;
VACUUM ANALYZE;
SQL
echo "loaded in $(( $(date +%s) - t0 ))s"
"$PG_BINDIR/psql" -X -q -A -t -F ' ' -c \
	"SELECT '   ' || state, count(*) FROM checkout.locks GROUP BY state ORDER BY state"
"$PG_BINDIR/psql" -X -q -A -t -c \
	"SELECT '   size of checkout.locks with its indexes: ' || pg_size_pretty(pg_total_relation_size('checkout.locks'))"

# time_query LABEL SQL: best and median of $runs runs (psql \timing); every
# column is turned to text, so that no part of a view is planned away
time_query() {
	local label=$1 sql=$2 i times
	times=$(for i in $(seq 1 "$runs"); do
		"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -c '\timing on' \
			-c "SELECT length(string_agg(q::text, ',')) FROM ($sql) q" |
			sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p'
	done | sort -n)
	awk -v label="$label" 'NR == 1 { best = $1 } { t[NR] = $1 }
		END { printf "%-44s best %8.1f ms   median %8.1f ms\n", label, best, t[int((NR + 1) / 2)] }' <<<"$times"
}

log_step "timings ($runs runs each, a fresh connection per run)"
time_query "checkout_monitor(24)" "SELECT * FROM checkout_monitor(24)"
time_query "checkout_monitor(1)" "SELECT * FROM checkout_monitor(1)"
time_query "checkout_monitor(168)" "SELECT * FROM checkout_monitor(168)"
time_query "checkout_verify()" "SELECT * FROM checkout_verify()"
time_query "checkout.stats" "SELECT * FROM checkout.stats"
time_query "checkout.active_locks" "SELECT * FROM checkout.active_locks"
time_query "checkout.stuck_reservations" "SELECT * FROM checkout.stuck_reservations"
time_query "events of one lock (events_lock index)" \
	"SELECT * FROM checkout.events WHERE lock_id = 12345 ORDER BY event_id"

log_step "checkout_monitor(24): its figures, and the plan it runs (auto_explain)"
"$PG_BINDIR/psql" -X -q -P pager=off -x -c "SELECT * FROM checkout_monitor(24)"
"$PG_BINDIR/psql" -X -q -P pager=off -v ON_ERROR_STOP=1 2>&1 <<'SQL' | sed -nE 's/^(LOG|DETAIL): +//p; /^\s/p'
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_analyze = on;
SET auto_explain.log_timing = on;
SET auto_explain.log_buffers = off;
SET client_min_messages = log;
SELECT count(*) FROM checkout_monitor(24);
SQL
