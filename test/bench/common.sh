# test/bench/common.sh — sourced by ../stress.sh (after lib.sh):
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

# run_pgbench LABEL CLIENTS SECONDS PGBENCH-ARGS...: sets RUN_TPS; prints the
# run's own report, with a progress line every 10 seconds while it runs; a
# run with an aborted client or a failed transaction counts as an error
# (BENCH_ERRORS), and its error messages are shown.  (Not in a command
# substitution: that would lose the count.)
run_pgbench() {
	local label=$1 clients=$2 seconds=$3 jobs rc failed log
	shift 3
	jobs=${BENCH_JOBS:-2}
	[ "$jobs" -gt "$clients" ] && jobs=$clients
	log=$BENCH_LOGDIR/$label.log
	echo "-- $label: $clients clients, $jobs threads, ${seconds}s"
	"$PG_BINDIR/pgbench" -n -P 10 --verbose-errors -c "$clients" -j "$jobs" -T "$seconds" "$@" 2>&1 |
		tee "$log" | sed -un "s/^progress: /   $label: /p"
	rc=${PIPESTATUS[0]}
	RUN_TPS=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$log" | tail -n 1)
	failed=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' "$log" | tail -n 1)
	grep -E '^(number of transactions actually processed|number of failed|latency average|tps =)' "$log" |
		sed 's/^/   /'
	if [ "$rc" -ne 0 ] || [ -z "$RUN_TPS" ] || [ "${failed:-0}" -ne 0 ]; then
		echo "!! $label: pgbench exit $rc, failed transactions ${failed:-?}; its errors:"
		grep -E 'error|ERROR|abort' "$log" | sed -E 's/^client [0-9]+ //' | sort | uniq -c | sort -rn | head -n 10
		BENCH_ERRORS=$((BENCH_ERRORS + 1))
	fi
	RUN_TPS=${RUN_TPS:-0}
}

# check_worker_swept: the background worker expires every overdue lock within
# 15 s of the run's end; returns non-zero (and sweeps them itself, so the
# invariant check can go on) when it does not
check_worker_swept() {
	local overdue n _
	log_step "the background worker sweeps every overdue lock"
	overdue="SELECT count(*) FROM checkout.locks WHERE state = 'active' AND expires_at < now()"
	for _ in $(seq 1 30); do
		sleep 0.5
		n=$("$PG_BINDIR/psql" -X -q -A -t -c "$overdue")
		if [ "$n" = 0 ]; then
			echo "worker: no overdue active lock left: PASS"
			return 0
		fi
	done
	echo "worker: $n overdue active lock(s) still active after 15s: FAIL"
	"$PG_BINDIR/psql" -X -q -c "SELECT checkout_cleanup_expired()" >/dev/null
	return 1
}

# show_server_errors: the cluster log's unexpected errors, and who waited for
# what in a deadlock (a bug: stock rows are locked in sku and stripe order)
show_server_errors() {
	cluster_log | grep -E 'ERROR|PANIC|terminated by signal' | grep -vE 'KC00[14]|canceling statement' | tail -n 10 || true
	cluster_log | grep -A 12 'ERROR:  deadlock detected' | grep -E 'ERROR|DETAIL|Process [0-9]+:|CONTEXT|STATEMENT|^\s' | head -n 40 || true
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
	total=$(printf '%s\n' "$out" | sed -nE 's/^TOTAL_VIOLATIONS ([0-9]+)$/\1/p')
	if [ "$total" = 0 ]; then
		echo "invariants: PASS"
		return 0
	fi
	echo "invariants: FAIL (${total:-?} violations)"
	return 1
}
