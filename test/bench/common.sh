# test/bench/common.sh — sourced by run_bench.sh and ../stress.sh (after lib.sh):
# set-up, pgbench runs and the invariant check.

BENCH_DIR=$REPO_ROOT/test/bench
BENCH_ERRORS=0
BENCH_LOGDIR=

# bench_setup NSKUS STOCK: the extension, the skus, the harness schema
bench_setup() {
	log_step "loading $1 skus with $2 units each"
	"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -v nskus="$1" -v stock="$2" \
		-f "$BENCH_DIR/setup.sql" || die "bench set-up failed"
	BENCH_LOGDIR=$(make_tmpdir)
}

# run_pgbench LABEL CLIENTS SECONDS PGBENCH-ARGS...: prints the tps on stdout,
# the run's own report on stderr; a run with an aborted client or a failed
# transaction counts as an error (BENCH_ERRORS).
run_pgbench() {
	local label=$1 clients=$2 seconds=$3 jobs rc tps failed log
	shift 3
	jobs=${BENCH_JOBS:-2}
	[ "$jobs" -gt "$clients" ] && jobs=$clients
	log=$BENCH_LOGDIR/$label.log
	echo "-- $label: $clients clients, $jobs threads, ${seconds}s" >&2
	"$PG_BINDIR/pgbench" -n -c "$clients" -j "$jobs" -T "$seconds" "$@" >"$log" 2>&1
	rc=$?
	tps=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$log" | tail -n 1)
	failed=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' "$log" | tail -n 1)
	grep -E '^(number of transactions actually processed|number of failed|latency average|tps =)' "$log" |
		sed 's/^/   /' >&2
	if [ "$rc" -ne 0 ] || [ -z "$tps" ] || [ "${failed:-0}" -ne 0 ]; then
		echo "!! $label: pgbench exit $rc, failed transactions ${failed:-?}; its errors:" >&2
		grep -E 'error|ERROR|abort' "$log" | sort | uniq -c | sort -rn | head -n 10 >&2
		BENCH_ERRORS=$((BENCH_ERRORS + 1))
	fi
	printf '%s\n' "${tps:-0}"
}

# check_invariants: the ledger invariants; returns non-zero when one is broken
check_invariants() {
	local out total
	log_step "invariant check"
	out=$("$PG_BINDIR/psql" -X -q -P pager=off -v ON_ERROR_STOP=1 -f "$BENCH_DIR/invariants.sql" 2>&1) || {
		printf '%s\n' "$out"; echo "invariants: FAIL (the check itself failed)"; return 1; }
	printf '%s\n' "$out" | grep -v '^TOTAL_VIOLATIONS'
	echo "locks by state:"
	"$PG_BINDIR/psql" -X -q -A -t -F ' ' -c \
		"SELECT '   ' || state, count(*) FROM checkout.locks GROUP BY state ORDER BY state" || true
	echo "checkout_verify() rows: $("$PG_BINDIR/psql" -X -q -A -t -c 'SELECT count(*) FROM checkout_verify()' 2>&1)"
	total=$(printf '%s\n' "$out" | sed -nE 's/^TOTAL_VIOLATIONS ([0-9]+)$/\1/p')
	if [ "$total" = 0 ]; then
		echo "invariants: PASS"
		return 0
	fi
	echo "invariants: FAIL (${total:-?} violations)"
	return 1
}
