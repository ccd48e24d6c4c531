# test/bench/flatness.sh — sourced by run_bench.sh for make bench-long, after
# the main runs, with its functions and settings: does the extension stay flat
# as history grows and as one transaction grows?
#   1. 8 clients over many skus, extension and floor, in an empty database,
#      then again after $history finished checkouts were loaded into both;
#   2. checkout_monitor(24) on that history;
#   3. checkout_cleanup_expired releasing $due due locks of one hot sku, in
#      batches of 10,000;
#   4. $one_tx start + advance-to-inventory_reservation calls on one hot sku
#      in separate transactions, then the same inside one transaction.
# Rows go to the TSV as "long <figure> <value>", lines to the summary.

flat_clients=8
flat_db=bench_history
saved_db=$PGDATABASE
value -d postgres -c "CREATE DATABASE $flat_db" >/dev/null
setup_db "$flat_db"
export PGDATABASE=$flat_db

# elapsed CMD...: runs CMD, prints its wall-clock seconds, returns its status
elapsed() {
	local t0 t1 rc=0
	t0=$(date +%s.%N)
	"$@" || rc=$?
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }'
	return $rc
}
# flat_point LABEL: extension and floor at $flat_clients clients over many
# skus; sets cps_floor_LABEL and cps_api_LABEL
flat_point() {
	local side f
	vacuum_all
	abba floor api "$work/$1-@side@" "$flat_clients" "$seconds" \
		"$BENCH_DIR/@side@_checkout.sql" -D step=0 -D sku_lo=1 -D sku_hi="$nskus"
	for side in floor api; do
		read -r -a f <<<"$(figures "$work/$1-$side" 4)"
		printf -v "cps_${side}_$1" '%s' "${f[0]}"
		printf 'long\t%s_%s_checkouts_per_s\t%s\n' "$1" "$side" "${f[0]}" >>"$tsv"
	done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
unfinished_flat=0

log_step "flatness 1/4: $flat_clients clients over $nskus skus in an empty database, ${seconds}s each side"
flat_point empty
unfinished_flat=$((unfinished_flat + 2 * flat_clients))
echo "   empty: floor $cps_floor_empty, extension $cps_api_empty checkouts/s (ratio $(ratio "$cps_api_empty" "$cps_floor_empty"))"

log_step "loading $history finished checkouts of the last 30 days into both schemas (set-based)"
t0=$(date +%s)
for schema in checkout floor; do
	value -v schema="$schema" -v locks="$history" -v days=30 -v nskus="$nskus" \
		-f "$BENCH_DIR/bench_history.sql" | while read -r line; do
		echo "   $(($(date +%s) - t0))s: $line"; done || die "loading the history into $schema failed"
done
echo "   $(($(date +%s) - t0))s: VACUUM ANALYZE"
vacuum_all
echo "   loaded in $(($(date +%s) - t0))s; checkout.locks with its indexes:" \
	"$(value -c "SELECT pg_size_pretty(pg_total_relation_size('checkout.locks'))")"
invariants "$unfinished_flat"

log_step "flatness 1/4, again: $flat_clients clients over $nskus skus after $history finished checkouts, ${seconds}s each side"
flat_point history
unfinished_flat=$((unfinished_flat + 2 * flat_clients))
echo "   after history: floor $cps_floor_history, extension $cps_api_history checkouts/s" \
	"(ratio $(ratio "$cps_api_history" "$cps_floor_history"))"
invariants "$unfinished_flat"

log_step "flatness 2/4: checkout_monitor(24) on that history (5 runs, a fresh connection each)"
monitor_ms=$(for _ in 1 2 3 4 5; do
	value -c '\timing on' -c "SELECT count(*) FROM checkout_monitor(24)" | sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p'
done | sort -n)
monitor_best=$(head -n 1 <<<"$monitor_ms")
monitor_median=$(sed -n 3p <<<"$monitor_ms")
echo "   best $monitor_best ms, median $monitor_median ms"
printf 'long\tmonitor24_best_ms\t%s\nlong\tmonitor24_median_ms\t%s\n' "$monitor_best" "$monitor_median" >>"$tsv"

log_step "flatness 3/4: checkout_cleanup_expired releasing $due due locks of one hot sku (S-0), 10,000 a call"
value -v n="$due" -f "$BENCH_DIR/bench_due.sql" >/dev/null
echo "   $due due locks loaded; S-0 reserved: $(value -c "SELECT reserved FROM checkout.inventory WHERE sku = 'S-0'")"
cleanup_times=()
released_total=0
while :; do
	res=$(value -c '\timing on' -c "SELECT checkout_cleanup_expired(10000)") || {
		echo "!! checkout_cleanup_expired failed"; errors=$((errors + 1)); break; }
	released=$(head -n 1 <<<"$res")
	ms=$(sed -nE 's/^Time: ([0-9.]+) ms.*/\1/p' <<<"$res")
	[ "$released" -gt 0 ] || break
	released_total=$((released_total + released))
	secs=$(awk -v ms="$ms" 'BEGIN { printf "%.2f", ms / 1000 }')
	cleanup_times+=("$secs")
	echo "   released $released in ${secs}s ($released_total of $due)"
	printf 'long\tcleanup_10000_s\t%s\n' "$secs" >>"$tsv"
done
if [ "$released_total" != "$due" ]; then
	echo "!! checkout_cleanup_expired released $released_total, not $due"
	errors=$((errors + 1))
fi
unfinished_flat=$((unfinished_flat + due))
invariants "$unfinished_flat"

log_step "flatness 4/4: $one_tx start + advance to inventory_reservation on one hot sku (S-0)"
# the same psql script both times, one statement per call: each call its own
# transaction, then all inside one (psql --single-transaction)
for how in separate one; do
	awk -v n="$one_tx" -v how="$how" 'BEGIN { for (i = 1; i <= n; i++) {
		printf "SELECT lock_id AS lid FROM checkout_start(%s, %s, %s) \\gset\n", "'\''tx-" how "-" i "'\''", "'\''bench'\''",
			"'\''[{\"line_id\":\"1\",\"sku\":\"S-0\",\"quantity\":1,\"unit_price\":100}]'\''"
		print "SELECT phase FROM checkout_advance(:lid, '\''bench'\'', until => '\''inventory_reservation'\'');" } }' \
		>"$work/one_tx_$how.sql"
done
one_tx_timeout=${BENCH_ONE_TX_TIMEOUT:-1800}
for how in separate one; do
	if [ $how = one ]; then flag=--single-transaction; what="inside one transaction"
	else flag=; what="each call its own transaction"; fi
	echo "   $what (at most ${one_tx_timeout}s) ..."
	rc=0
	secs=$(elapsed timeout "$one_tx_timeout" "$PG_BINDIR/psql" -X -q -U bench_app -v ON_ERROR_STOP=1 $flag \
		-o /dev/null -f "$work/one_tx_$how.sql") || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "!! $what: psql exit $rc$([ "$rc" = 124 ] && echo " (timed out after ${one_tx_timeout}s)")"
		errors=$((errors + 1))
		secs=$one_tx_timeout
	fi
	printf -v "one_tx_$how" '%s' "$secs"
	printf 'long\tone_tx_%s_s\t%s\n' "$how" "$secs" >>"$tsv"
	echo "   $what: ${secs}s"
done
unfinished_flat=$((unfinished_flat + 2 * one_tx))
invariants "$unfinished_flat"

note ""
note "flatness (make bench-long), $flat_clients clients over $nskus skus, whole checkouts/s:"
note "$(printf '  %-34s floor %7s, extension %7s (ratio %s)' "empty database:" "$cps_floor_empty" "$cps_api_empty" \
	"$(ratio "$cps_api_empty" "$cps_floor_empty")")"
note "$(printf '  %-34s floor %7s, extension %7s (ratio %s)' "after $history finished checkouts:" "$cps_floor_history" \
	"$cps_api_history" "$(ratio "$cps_api_history" "$cps_floor_history")")"
note "  extension after/empty $(ratio "$cps_api_history" "$cps_api_empty") (target >= 0.9); floor after/empty $(ratio "$cps_floor_history" "$cps_floor_empty")"
note "checkout_monitor(24) on that history: best $monitor_best ms, median $monitor_median ms (target < 1 s)"
note "checkout_cleanup_expired, $due due locks of one hot sku, s per 10,000: ${cleanup_times[*]} (target < 2 s)"
note "$one_tx start + advance to inventory_reservation on one hot sku: separate transactions ${one_tx_separate}s," \
	"one transaction ${one_tx_one}s, ratio $(ratio "$one_tx_one" "$one_tx_separate") (target <= 3)"

export PGDATABASE=$saved_db
