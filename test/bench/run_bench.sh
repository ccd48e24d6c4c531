#!/usr/bin/env bash
# make bench: whole checkouts through the API against the DML floor (the same
# row changes as raw SQL, test/bench/floor_checkout.sql), side by side in one
# run, at each client count, over many skus and on one hot sku, and on the hot
# sku striped (checkout_stripe) at 16 and 32 clients; all of it with
# synchronous_commit off, then on (what shops run); per-call latency p50/p99;
# checkout_status against a primary-key SELECT; the ledger invariants after
# every multi-client run; a gnuplot PNG of it all.
# make bench-long (BENCH_LONG=1) adds the flatness figures: throughput after a
# million finished checkouts, checkout_cleanup_expired on 30,000 due locks of
# one hot sku, checkout_monitor(24) on that history, and 10,000 start+reserve
# calls in one transaction against the same in separate ones.
#
# Environment (defaults; bench-long's in brackets):
#   BENCH_SECONDS (10 [30])      seconds per measured point
#   BENCH_STATUS_SECONDS (5 [10]) seconds per checkout_status / SELECT point
#   BENCH_CLIENTS ("1 2 4 8 16")  client counts
#   BENCH_SKUS (10000)           skus of the "many skus" runs
#   BENCH_STRIPES (16)           stripes of the hot sku in the striped runs
#   BENCH_STRIPED_CLIENTS ("16 32") client counts of the striped runs
#   BENCH_SYNC ("off on")        synchronous_commit settings, in turn
#   BENCH_SLICE (5)              seconds of one turn: the sides take turns
#   BENCH_JOBS (2)               pgbench threads
#   BENCH_OUT (test/bench/results [/long]) where bench.tsv, summary.txt, bench.png go
#   BENCH_HISTORY (1000000)      finished checkouts of the history (bench-long)
#   BENCH_DUE (30000)            due locks released by checkout_cleanup_expired (bench-long)
#   BENCH_ONE_TX (10000)         start+reserve pairs in one transaction (bench-long)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"
BENCH_DIR=$REPO_ROOT/test/bench

long=${BENCH_LONG:-0}
if [ "$long" = 1 ]; then def_seconds=30 def_status=10; else def_seconds=10 def_status=6; fi
seconds=${BENCH_SECONDS:-$def_seconds}
status_seconds=${BENCH_STATUS_SECONDS:-$def_status}
clients_list=${BENCH_CLIENTS:-1 2 4 8 16}
nskus=${BENCH_SKUS:-10000}
stripes=${BENCH_STRIPES:-16}
striped_clients=${BENCH_STRIPED_CLIENTS:-16 32}
sync_list=${BENCH_SYNC:-off on}
slice=${BENCH_SLICE:-5}
jobs=${BENCH_JOBS:-2}
if [ "$long" = 1 ]; then out=${BENCH_OUT:-$BENCH_DIR/results/long}; else out=${BENCH_OUT:-$BENCH_DIR/results}; fi
history=${BENCH_HISTORY:-1000000}
due=${BENCH_DUE:-30000}
one_tx=${BENCH_ONE_TX:-10000}
stock=1000000000000		# ample: no checkout fails for want of stock

CHECKOUT_PACKAGES+=(gnuplot-nox)
ensure_packages
build_install
# synchronous_commit off (as lib.sh has it); otherwise a durable server's
# settings, and room for the run's WAL so that no checkpoint falls inside it
start_cluster "fsync = on" "full_page_writes = on" "shared_buffers = '256MB'" \
	"max_wal_size = '8GB'" "checkpoint_timeout = '1h'" "checkout.cleanup_interval = '1h'"

mkdir -p "$out"
work=$(make_tmpdir)
chmod 777 "$work"
tsv=$work/bench.tsv
summary=$work/summary.txt
errors=0
sql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
value() { "$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
# note: a line for the screen and the summary
note() { printf '%s\n' "$*" | tee -a "$summary"; }

# setup DB: the extension, the catalog, the floor schema
setup_db() {
	value -d "$1" -v nskus="$nskus" -v stock="$stock" -v hot_stock="$stock" \
		-f "$BENCH_DIR/bench_setup.sql" >/dev/null || die "bench set-up failed"
}

# measure PREFIX CLIENTS SECONDS SCRIPT PGBENCH-ARGS...: one pgbench run of
# SCRIPT as the application's role with prepared statements, every
# transaction logged to PREFIX-<run>.*, the run's length (transactions / tps,
# connection time left out) appended to PREFIX.secs.  A failed run is counted
# in $errors and its errors shown.
measure() {
	local prefix=$1 clients=$2 secs=$3 script=$4 j=$jobs rc=0 run tps n failed
	shift 4
	[ "$j" -gt "$clients" ] && j=$clients
	run=1
	[ -f "$prefix.secs" ] && run=$(($(wc -l <"$prefix.secs") + 1))
	run=$prefix-$run
	"$PG_BINDIR/pgbench" -n -U bench_app -M prepared -c "$clients" -j "$j" -T "$secs" \
		-l --log-prefix="$run" -f "$script" "$@" >"$run.out" 2>&1 || rc=$?
	tps=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$run.out")
	n=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' "$run.out")
	failed=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' "$run.out")
	if [ "$rc" -ne 0 ] || [ -z "$tps" ] || [ "${failed:-0}" -ne 0 ]; then
		echo "!! $(basename "$run"): pgbench exit $rc, failed transactions ${failed:-?}:"
		grep -E 'error|ERROR|abort' "$run.out" | sort | uniq -c | sort -rn | head -n 5
		errors=$((errors + 1))
	fi
	awk -v n="${n:-0}" -v tps="${tps:-0}" 'BEGIN { print (tps > 0 ? n / tps : 0) }' >>"$prefix.secs"
}

# figures PREFIX CALLS: over all runs of PREFIX, the rate of the last call
# (per second) and, per call, the nearest-rank p50 and p99 in ms: "rate p50
# p99 ...".  pgbench's log line is (client, transaction number counted from 1,
# elapsed µs, ...); a client's calls come in turn, so the call is (number - 1)
# modulo CALLS.
figures() {
	local secs
	secs=$(awk '{ s += $1 } END { print s + 0 }' "$1.secs")
	cat "$1"-*.[0-9]* | awk -v calls="$2" '{ print ($2 - 1) % calls, $3 }' | sort -k1,1n -k2,2n |
		awk -v calls="$2" -v secs="$secs" '{ v[$1, ++n[$1]] = $2 }
			function at(c, p,  i) { i = int(p * n[c] + 0.999999); if (i < 1) i = 1; return v[c, i] / 1000 }
			END { printf "%.1f", (secs > 0 ? n[calls - 1] / secs : 0)
				  for (c = 0; c < calls; c++) printf " %.3f %.3f", at(c, 0.5), at(c, 0.99); print "" }'
}

# alternate A B PREFIX-PATTERN CLIENTS SECONDS ARGS...: measures A and B for
# SECONDS each, in slices of $slice seconds taken in turns A B B A A B ...,
# so that the load of a shared machine, drifting or in bursts, falls on both
# alike; the side's name replaces @side@ in PREFIX-PATTERN and in ARGS
alternate() {
	local a=$1 b=$2 pattern=$3 clients=$4 secs=$5 n i side
	shift 5
	n=$(((secs + slice - 1) / slice))
	for ((i = 0; i < n; i++)); do
		for side in $([ $((i % 2)) = 0 ] && echo "$a $b" || echo "$b $a"); do
			measure "${pattern//@side@/$side}" "$clients" "$slice" "${@//@side@/$side}"
		done
	done
}

# invariants MAX_ACTIVE [DB]: the ledger of both sides, MAX_ACTIVE checkouts
# may be unfinished; one line, details on failure
invariants() {
	local res
	res=$(value ${2:+-d "$2"} -v max_active="$1" -f "$BENCH_DIR/bench_invariants.sql" 2>&1) || {
		printf '%s\n' "$res"; echo "   invariants: FAIL (the check itself failed)"; errors=$((errors + 1)); return; }
	if grep -qx 'TOTAL_VIOLATIONS 0' <<<"$res"; then
		echo "   invariants: PASS ($(grep -c '=' <<<"$res") checks on both sides: reserved = sum of reservations, on_hand + sold = initial, no failed checkout, checkout_verify() empty)"
	else
		grep -vE '=0$' <<<"$res" | sed 's/^/   /'
		echo "   invariants: FAIL"
		errors=$((errors + 1))
	fi
}

vacuum_all() { value ${1:+-d "$1"} -c "VACUUM ANALYZE" >/dev/null; }

setup_db "$PGDATABASE"
machine="$(nproc) cores ($(sed -nE 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)), $(free -g | awk '/^Mem:/ { print $2 }') GB"
version=$(value -c "SELECT extversion FROM pg_extension WHERE extname = 'checkout'")
commit=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
	echo "# checkout $version ($commit), $(date -u '+%Y-%m-%d %H:%M UTC'), $machine"
	echo "# make bench$([ "$long" = 1 ] && echo -long): ${seconds}s per side and point in ${slice}s turns, $nskus skus, synchronous_commit $sync_list, hot sku in $stripes stripes, default logging"
} >"$tsv"

# ---- whole checkouts: extension and floor at each point, back to back ----
# point MODE CLIENTS LO HI WHAT [MANY]: one point of MODE (the tsv's mode,
# with "-sync" when synchronous_commit is on), both sides in turns; with
# MANY, the extension over many skus takes its turns too (the tsv's mode
# MODE-many), so that a striped hot sku is held against the many-sku rate
# of the same minutes, not of a point measured earlier
point() {
	local mode=$1 clients=$2 lo=$3 hi=$4 what=$5 many=${6:-} side i order api_runs
	local turns=$(((seconds + slice - 1) / slice))
	point=$((point + 1))
	vacuum_all
	if [ -z "$many" ]; then
		alternate floor api "$work/@side@-$mode-$clients" "$clients" "$seconds" \
			"$BENCH_DIR/@side@_checkout.sql" -D step=0 -D sku_lo=$lo -D sku_hi=$hi
		api_runs=$turns
	else
		# each of the turns * 3 / 2 rounds runs the extension twice (hot, many)
		api_runs=$((turns * 3 / 2 * 2))
		for ((i = 0; i < turns * 3 / 2; i++)); do
			case $((i % 3)) in
			0) order="floor api many" ;;
			1) order="api many floor" ;;
			*) order="many floor api" ;;
			esac
			for side in $order; do
				if [ "$side" = many ]; then
					measure "$work/api-$mode-many-$clients" "$clients" "$slice" \
						"$BENCH_DIR/api_checkout.sql" -D step=0 -D sku_lo=1 -D sku_hi="$nskus"
				else
					measure "$work/$side-$mode-$clients" "$clients" "$slice" \
						"$BENCH_DIR/${side}_checkout.sql" -D step=0 -D sku_lo=$lo -D sku_hi=$hi
				fi
			done
		done
		read -r -a f <<<"$(figures "$work/api-$mode-many-$clients" 4)"
		printf 'checkout\t%s\t%s\t%d\t%s\n' "$mode-many" api "$clients" "$(IFS=$'\t'; echo "${f[*]}")" >>"$tsv"
		echo "   the extension over $nskus skus in the same turns: ${f[0]} checkouts/s"
	fi
	for side in floor api; do
		read -r -a f <<<"$(figures "$work/$side-$mode-$clients" 4)"
		printf 'checkout\t%s\t%s\t%d\t%s\n' "$mode" "$side" "$clients" "$(IFS=$'\t'; echo "${f[*]}")" >>"$tsv"
		printf -v "cps_$side" '%s' "${f[0]}"
		printf -v "lat_$side" 'start %s/%s  price_lock %s/%s  authorise %s/%s  capture %s/%s' "${f[@]:1}"
	done
	echo "-- $point: $clients clients, $what: floor $cps_floor, extension $cps_api checkouts/s" \
		"(ratio $(awk -v a="$cps_api" -v f="$cps_floor" 'BEGIN { printf "%.2f", (f > 0 ? a / f : 0) }'))"
	echo "   p50/p99 ms, floor:     $lat_floor"
	echo "   p50/p99 ms, extension: $lat_api"
	unfinished=$((unfinished + api_runs * clients))
	invariants "$unfinished"
}

set_sync() {
	value -c "ALTER SYSTEM SET synchronous_commit = $1" -c "SELECT pg_reload_conf()" >/dev/null
}

point=0
unfinished=0	# a run stopped by time leaves at most one unfinished checkout per client
for sync in $sync_list; do
	set_sync "$sync"
	suffix=$([ "$sync" = on ] && echo -sync || true)
	for mode in many hot; do
		if [ "$mode" = many ]; then what="spread over $nskus skus" lo=1 hi=$nskus
		else what="one hot sku (S-0)" lo=0 hi=0; fi
		log_step "whole checkouts $what, synchronous_commit $sync: extension and floor, ${seconds}s each in ${slice}s turns, at $clients_list clients"
		for clients in $clients_list; do
			point "$mode$suffix" "$clients" "$lo" "$hi" "$what, synchronous_commit $sync"
		done
	done
	# the hot sku striped for the extension (the floor's stays one row), and
	# the extension over many skus in the same turns
	log_step "one hot sku in $stripes stripes, synchronous_commit $sync, at $striped_clients clients"
	value -c "SELECT checkout_stripe('S-0', $stripes)" >/dev/null
	for clients in $striped_clients; do
		point "striped$suffix" "$clients" 0 0 "one hot sku in $stripes stripes, synchronous_commit $sync" many
	done
	value -c "SELECT checkout_stripe('S-0', 1)" >/dev/null
done
set_sync off

# ---- checkout_status against a primary-key SELECT of the lock row ----
log_step "checkout_status against a primary-key SELECT of the same lock row, ${status_seconds}s each in turns"
read -r lid_lo lid_hi n_locks < <(value -F ' ' -c "SELECT min(lock_id), max(lock_id), count(*) FROM checkout.locks")
[ "$n_locks" = $((lid_hi - lid_lo + 1)) ] || die "lock ids $lid_lo..$lid_hi have gaps; status runs need them all"
echo "   over $n_locks locks (ids $lid_lo..$lid_hi)"
for clients in $clients_list; do
	slice=2 alternate pk api "$work/status-@side@-$clients" "$clients" "$status_seconds" \
		"$BENCH_DIR/@side@_status.sql" -D lid_lo="$lid_lo" -D lid_hi="$lid_hi"
	line="   $clients clients:"
	for side in pk api; do
		read -r rate p50 p99 <<<"$(figures "$work/status-$side-$clients" 1)"
		printf 'status\t-\t%s\t%d\t%s\t%s\t%s\n' "$side" "$clients" "$rate" "$p50" "$p99" >>"$tsv"
		line+="  $([ $side = api ] && echo checkout_status || echo SELECT) $rate/s p50 $p50 ms p99 $p99 ms"
	done
	echo "$line"
done

# ---- the report ----
log_step "results"
: >"$summary"
note "checkout $version ($commit) on $machine; $(date -u '+%Y-%m-%d %H:%M UTC')"
note "command: make bench$([ "$long" = 1 ] && echo -long); ${seconds}s per side and point in ${slice}s turns; synchronous_commit $sync_list; hot sku in $stripes stripes; default logging"
note ""
note "whole checkouts per second (4 calls, each its own transaction); floor = the same row changes as raw SQL"
awk -F '\t' '$1 == "checkout" { v[$2, $3, $4] = $5; if (!(($2, $4) in seen)) { seen[$2, $4] = 1; rows[++n] = $2 SUBSEP $4 } }
	END { printf "%-22s %8s %10s %10s %8s %12s\n", "skus (sync commit)", "clients", "floor", "extension", "ratio", "/ many skus"
		  for (i = 1; i <= n; i++) { split(rows[i], r, SUBSEP); mode = r[1]; k = r[2]
			base = mode; sub(/^(hot|striped)/, "many", base)
			if ((mode "-many", "api", k) in v) base = mode "-many"
			if (mode ~ /-many$/) continue
			name = mode; sub(/-sync$/, " (on)", name); if (name == mode) name = name " (off)"
			sub(/^hot/, "one hot", name); sub(/^striped/, "hot, striped", name)
			printf "%-22s %8d %10.1f %10.1f %8.2f %12s\n", name, k, v[mode, "floor", k], v[mode, "api", k],
				(v[mode, "floor", k] > 0 ? v[mode, "api", k] / v[mode, "floor", k] : 0),
				(mode != base && v[base, "api", k] > 0 ? sprintf("%.2f", v[mode, "api", k] / v[base, "api", k]) : "") } }' "$tsv" | tee -a "$summary"
note ""
note "latency per call, p50 / p99 in ms (extension | floor)"
awk -F '\t' '$1 == "checkout" { for (i = 0; i < 4; i++) l[$2, $3, $4, i] = sprintf("%.2f/%.2f", $(6 + 2 * i), $(7 + 2 * i))
		if (!(($2, $4) in seen)) { seen[$2, $4] = 1; rows[++n] = $2 SUBSEP $4 } }
	END { printf "%-16s %7s  %-23s %-23s %-23s %-23s\n", "skus", "clients", "start", "advance to price_lock", "authorise", "capture to stock_commit"
		  for (j = 1; j <= n; j++) { split(rows[j], r, SUBSEP); mode = r[1]; k = r[2]; printf "%-16s %7d ", mode, k
			for (i = 0; i < 4; i++) printf " %-23s", l[mode, "api", k, i] " | " l[mode, "floor", k, i]
			print "" } }' "$tsv" | tee -a "$summary"
note ""
note "checkout_status against a primary-key SELECT of the lock row"
awk -F '\t' -v clients="$clients_list" '$1 == "status" { t[$3, $4] = $5; p50[$3, $4] = $6; p99[$3, $4] = $7 }
	END { printf "%8s %12s %12s %20s %20s %14s\n", "clients", "status/s", "select/s", "status p50/p99 ms", "select p50/p99 ms", "p50 ratio"
		  n = split(clients, cs, " ")
		  for (j = 1; j <= n; j++) { k = cs[j]
			printf "%8d %12.1f %12.1f %20s %20s %14.2f\n", k, t["api", k], t["pk", k],
				p50["api", k] "/" p99["api", k], p50["pk", k] "/" p99["pk", k],
				(p50["pk", k] > 0 ? p50["api", k] / p50["pk", k] : 0) } }' "$tsv" | tee -a "$summary"

# ---- bench-long: what logging and NOTIFY cost, where the time goes, and the flatness figures ----
if [ "$long" = 1 ]; then
	# server settings for every new session (the settings are superuser-only):
	# default, every event notified (checkout.notify_events = all: a NOTIFY
	# per completed checkout), no logging
	set_server() {
		local logging=on events=DEFAULT
		case $1 in
		notify_all) events="'all'" ;;
		no_logging) logging=off ;;
		esac
		value -c "ALTER SYSTEM SET checkout.logging = $logging" -c "ALTER SYSTEM SET checkout.notify_events = $events" \
			-c "SELECT pg_reload_conf()" >/dev/null
	}
	log_step "what logging and NOTIFY cost: the extension at 8 clients over $nskus skus, ${seconds}s each"
	for variant in default notify_all no_logging no_logging notify_all default; do
		set_server $variant
		vacuum_all
		measure "$work/settings-$variant" 8 $(((seconds + 1) / 2)) "$BENCH_DIR/api_checkout.sql" \
			-D step=0 -D sku_lo=1 -D sku_hi="$nskus"
	done
	for variant in default notify_all no_logging; do
		read -r cps _ <<<"$(figures "$work/settings-$variant" 4)"
		printf -v "cps_$variant" '%s' "$cps"
		printf 'long\tsettings_%s_checkouts_per_s\t%s\n' "$variant" "$cps" >>"$tsv"
		echo "   $variant: $cps checkouts/s"
	done
	note ""
	note "the extension at 8 clients over many skus, checkouts/s: default settings $cps_default;" \
		"checkout.notify_events = all (a NOTIFY per completed checkout) $cps_notify_all; checkout.logging = off $cps_no_logging"

	# where the time goes: wait events of the extension's backends at 16
	# clients (a NOTIFY takes a database-wide lock at commit, "Lock:object")
	for variant in default notify_all; do
		set_server $variant
		log_step "wait events of the extension's backends, 16 clients over $nskus skus, $variant settings"
		measure "$work/waits-$variant" 16 10 "$BENCH_DIR/api_checkout.sql" -D step=0 -D sku_lo=1 -D sku_hi="$nskus" &
		sleep 2
		value -v samples=140 -f "$BENCH_DIR/wait_sample.sql" | sed 's/^/   /'
		wait $!
		# (measure ran in a subshell: its count of errors is read back here)
		if grep -qE 'aborted|number of failed transactions: [1-9]' "$work/waits-$variant-1.out"; then
			echo "!! the $variant run behind the wait sampling had errors"
			errors=$((errors + 1))
		fi
	done
	set_server default
	invariants $((unfinished + 48 + 32))
	source "$BENCH_DIR/flatness.sh"
fi

log_step "plot"
cp "$tsv" "$out/bench.tsv"
cp "$summary" "$out/summary.txt"
bash "$BENCH_DIR/plot.sh" "$out/bench.tsv" "$out/bench.png"
echo "wrote $out/bench.png, $out/bench.tsv, $out/summary.txt"

if [ "$errors" -gt 0 ]; then
	echo "bench: $errors error(s): see above"
	exit 1
fi
echo "bench: done, no errors"
