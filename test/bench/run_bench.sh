#!/usr/bin/env bash
# make bench: pgbench of a full checkout through the API against the same
# writes in plain SQL, spread over many skus and on one hot sku, then the
# ledger invariant check.  Environment (defaults): BENCH_SECONDS (20),
# BENCH_CLIENTS (4), BENCH_JOBS (2), BENCH_HOT_CLIENTS (8), BENCH_SKUS (1000),
# BENCH_STOCK (1000000000).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$REPO_ROOT/test/bench/common.sh"
cd "$REPO_ROOT"

seconds=${BENCH_SECONDS:-20}
clients=${BENCH_CLIENTS:-4}
hot_clients=${BENCH_HOT_CLIENTS:-8}
nskus=${BENCH_SKUS:-1000}
stock=${BENCH_STOCK:-1000000000}

ensure_packages
build_install
start_cluster
bench_setup "$nskus" "$stock"

log_step "pgbench runs"
base_spread=$(run_pgbench baseline_spread "$clients" "$seconds" -D nskus="$nskus" -f "$BENCH_DIR/baseline.sql")
api_spread=$(run_pgbench api_spread "$clients" "$seconds" -D nskus="$nskus" -f "$BENCH_DIR/api.sql")
base_hot=$(run_pgbench baseline_hot "$hot_clients" "$seconds" -D nskus=1 -f "$BENCH_DIR/baseline.sql")
api_hot=$(run_pgbench api_hot "$hot_clients" "$seconds" -D nskus=1 -f "$BENCH_DIR/api.sql")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
row() {	# row WORKLOAD CLIENTS BASELINE API
	awk -v w="$1" -v c="$2" -v b="$3" -v a="$4" -v r="$(ratio "$4" "$3")" \
		'BEGIN { printf "%-28s %8s %14.1f %10.1f %14s\n", w, c, b, a, r }'
}

log_step "results (transactions per second; one transaction = one whole checkout)"
printf '%-28s %8s %14s %10s %14s\n' workload clients "baseline tps" "api tps" "api/baseline"
row "spread over $nskus skus" "$clients" "$base_spread" "$api_spread"
row "one hot sku" "$hot_clients" "$base_hot" "$api_hot"

"$PG_BINDIR/psql" -X -q -c "SELECT checkout_cleanup_expired()" >/dev/null
status=0
check_invariants || status=1
if [ "$BENCH_ERRORS" -gt 0 ]; then
	echo "bench: $BENCH_ERRORS pgbench run(s) had errors"
	status=1
fi
exit $status
