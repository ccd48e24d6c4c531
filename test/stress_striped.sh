#!/usr/bin/env bash
# make stress-striped: a flash sale on ONE striped sku (issue 22).  Many
# clients on the one sku, with little stock so that its stripes keep running
# dry and reservations fall back to taking every stripe: whole checkouts,
# cancels, carts shared by several sessions (KC001), one-second locks
# abandoned at every stage or touched after their deadline (the worker
# sweeps them), admin sweeps, restocks and negative restocks (23514 when
# too few would be left), rebalances by hand and the worker's (every
# checkout.rebalance_interval), and now and then the sku striped anew (4 to
# 12 stripes) under load.  Then: the worker sweeps what is overdue and folds
# the stripes' totals into the inventory row, and the ledger invariants hold
# (test/bench/invariants.sql): never oversold (no stripe or total with
# reserved > on_hand), reserved = the reservations of each stripe
# (checkout_verify() empty), on_hand + sold = initial stock + restocked.
# Environment (defaults): STRIPED_SECONDS (40), STRIPED_CLIENTS (12),
# STRIPED_STRIPES (8, the sku's stripes at the start), STRIPED_STOCK (200),
# STRIPED_RESTRIPE (1; 0 leaves out the striping anew under load), BENCH_JOBS
# (2).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$REPO_ROOT/test/bench/common.sh"
cd "$REPO_ROOT"

seconds=${STRIPED_SECONDS:-40}
clients=${STRIPED_CLIENTS:-12}
stripes=${STRIPED_STRIPES:-8}
stock=${STRIPED_STOCK:-200}
restripe=()
[ "${STRIPED_RESTRIPE:-1}" = 0 ] || restripe=(-f "$BENCH_DIR/stress_restripe.sql@1")

ensure_packages
build_install
start_cluster "checkout.rebalance_interval = '500ms'"
bench_setup 1 "$stock"
"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -c "SELECT 'S-1 striped: ' || checkout_stripe('S-1', $stripes)"

log_step "stress-striped: $clients clients for ${seconds}s on one sku of $stock units in $stripes stripes"
B=$BENCH_DIR
run_pgbench stress_striped "$clients" "$seconds" -D nskus=1 \
	-f "$B/stress_full.sql@8" -f "$B/stress_cancel.sql@4" -f "$B/stress_abandon.sql@4" \
	-f "$B/stress_touch.sql@2" -f "$B/stress_contend.sql@4" -f "$B/stress_cleanup.sql@2" \
	-f "$B/stress_restock.sql@4" -f "$B/stress_destock.sql@2" -f "$B/stress_rebalance.sql@2" \
	"${restripe[@]}"
echo "stress-striped: $RUN_TPS script runs per second"
status=0
[ "$BENCH_ERRORS" -eq 0 ] || status=1
"$PG_BINDIR/psql" -X -q -P pager=off \
	-c "SELECT count(*) FILTER (WHERE l.state = 'completed') AS sold_checkouts,
	           count(*) FILTER (WHERE l.error_code = 'KC011') AS refused_short,
	           (SELECT count(*) FROM harness.restocks WHERE quantity > 0) AS restocks,
	           (SELECT count(*) FROM harness.restocks WHERE quantity < 0) AS destocks
	    FROM checkout.locks l" \
	-c "SELECT sku, on_hand, reserved, available, stripes FROM checkout.stock"

check_worker_swept || status=1

# wait up to 10 s for the worker to fold a striped sku's totals into its
# inventory row once the sweep's releases are in: invariant 8 judges them
log_step "the background worker folds the stripes' totals into the inventory row"
folded="SELECT count(*) FROM checkout.inventory i JOIN checkout.stock s USING (sku)
        WHERE (i.on_hand, i.reserved) IS DISTINCT FROM (s.on_hand, s.reserved)"
for _ in $(seq 1 20); do
	[ "$("$PG_BINDIR/psql" -X -q -A -t -c "$folded")" = 0 ] && break
	sleep 0.5
done
show_server_errors

check_invariants || status=1
"$PG_BINDIR/psql" -X -q -P pager=off \
	-c "SELECT stripe, on_hand, reserved FROM checkout.inventory_stripes ORDER BY stripe" \
	-c "SELECT failed_phase, error_code, count(*) FROM checkout.locks WHERE state IN ('failed', 'expired') GROUP BY 1, 2 ORDER BY 1, 2"
[ $status -eq 0 ] && echo "stress-striped: PASS" || echo "stress-striped: FAIL"
exit $status
