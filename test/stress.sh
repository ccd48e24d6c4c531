#!/usr/bin/env bash
# make stress: many clients on few skus with little stock, mixing whole
# checkouts, cancels, carts shared by several sessions (KC001), one-second locks
# abandoned at every stage or touched after their deadline, admin sweeps and
# restocks; then the background worker must sweep what is overdue and the
# ledger invariants must hold.  Environment (defaults): STRESS_SECONDS (60),
# STRESS_CLIENTS (8), BENCH_JOBS (2), STRESS_SKUS (4), STRESS_STOCK (40).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$REPO_ROOT/test/bench/common.sh"
cd "$REPO_ROOT"

seconds=${STRESS_SECONDS:-60}
clients=${STRESS_CLIENTS:-8}
nskus=${STRESS_SKUS:-4}
stock=${STRESS_STOCK:-40}

ensure_packages
build_install
start_cluster
bench_setup "$nskus" "$stock"

log_step "stress: $clients clients for ${seconds}s on $nskus skus of $stock units"
B=$BENCH_DIR
run_pgbench stress "$clients" "$seconds" -D nskus="$nskus" \
	-f "$B/stress_full.sql@4" -f "$B/stress_cancel.sql@2" -f "$B/stress_abandon.sql@2" \
	-f "$B/stress_touch.sql@1" -f "$B/stress_contend.sql@3" -f "$B/stress_cleanup.sql@1" \
	-f "$B/stress_restock.sql@2"
echo "stress: $RUN_TPS script runs per second"
status=0
[ "$BENCH_ERRORS" -eq 0 ] || status=1

check_worker_swept || status=1
show_server_errors

check_invariants || status=1
"$PG_BINDIR/psql" -X -q -P pager=off -c "SELECT kind, count(*) FROM checkout.compensations GROUP BY kind ORDER BY kind" \
	-c "SELECT failed_phase, error_code, count(*) FROM checkout.locks WHERE state IN ('failed', 'expired') GROUP BY 1, 2 ORDER BY 1, 2"
[ $status -eq 0 ] && echo "stress: PASS" || echo "stress: FAIL"
exit $status
