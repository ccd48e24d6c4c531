#!/usr/bin/env bash
# make bench-instructions: the CPU cost of a whole checkout counted in
# instructions by valgrind's callgrind, for the extension and the DML floor
# (the same scripts as make bench: api_checkout.sql, floor_checkout.sql), over
# many skus, on one hot sku and on it striped, one client, and over many skus
# with the extension's logging off (what its two log lines a checkout cost).
# A count does not move with the load of a shared machine, as throughput does
# (make bench's points swing by up to ±20 % between runs minutes apart), so a
# change that saves 1 % shows.
#
# Instructions are not time: callgrind also simulates the caches and the
# branch predictor, and the report gives the misses and callgrind's cycle
# estimate (KCachegrind's: instructions + 10 x (L1 misses + mispredicted
# branches) + 100 x last-level misses).  A side that runs fewer instructions
# over more code can still take more cycles.
#
# The server runs under callgrind; each pgbench session is one backend, whose
# count is written when it exits.  Each side runs a session of N1 and one of
# N2 checkouts: (count(N2) - count(N1)) / (N2 - N1) is the cost of one
# checkout, without backend start-up, catalog loading and first plans.
#
# Environment: INSTR_N1 (100), INSTR_N2 (400) checkouts per session;
# INSTR_MODES ("many hot striped quiet"); INSTR_STRIPES (16); INSTR_OUT
# (test/bench/results) where instructions.txt goes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"
BENCH_DIR=$REPO_ROOT/test/bench
n1=${INSTR_N1:-100}
n2=${INSTR_N2:-400}
out=${INSTR_OUT:-$BENCH_DIR/results}
[ "$n2" -gt "$n1" ] || die "INSTR_N2 must be larger than INSTR_N1"

CHECKOUT_PACKAGES+=(valgrind)
ensure_packages
build_install
start_cluster "checkout.cleanup_interval = '1h'" "autovacuum = off"
"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -v nskus=10000 -v stock=1000000000000 \
	-v hot_stock=1000000000000 -f "$BENCH_DIR/bench_setup.sql" >/dev/null || die "bench set-up failed"
# a catalog in its steady state: every inventory row updated once and the
# space vacuumed, so that a sku's first sale in the run is not the one that
# moves its row off a full page (a cost of loading the catalog, on both
# sides, not of a checkout); and statistics, as make bench takes them
"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || die "preparing the catalog failed"
UPDATE checkout.inventory SET on_hand = on_hand;
UPDATE floor.inventory SET on_hand = on_hand;
VACUUM ANALYZE;
SQL
as_postgres "$PG_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -w stop >/dev/null

counts=$(make_tmpdir)
chmod 777 "$counts"
log_step "the server under callgrind (about 50 times slower than without)"
as_postgres bash -c "valgrind --tool=callgrind --cache-sim=yes --branch-sim=yes --trace-children=yes \
	--callgrind-out-file='$counts/cg.%p' '$PG_BINDIR/postgres' -D '$CLUSTER_DIR/data' \
	>'$CLUSTER_DIR/valgrind.log' 2>&1 &"
for _ in $(seq 300); do
	"$PG_BINDIR/pg_isready" -q && break
	sleep 1
done
"$PG_BINDIR/pg_isready" -q || die "the server did not start under valgrind"
# the catalog in shared buffers first: otherwise each new sku a session
# touches costs a buffer miss, on both sides, which is not a checkout's cost
"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || die "warming the buffers failed"
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM checkout.inventory WHERE sku >= '';
SELECT count(*) FROM floor.inventory WHERE sku >= '';
SQL

# settle: waits until no backend's file is still to come (pg_isready's
# connections, the last session's) for 3 seconds
settle() {
	local last now
	last=$(ls -l "$counts")
	while sleep 3; do
		now=$(ls -l "$counts")
		[ "$now" = "$last" ] && return
		last=$now
	done
}

# session SIDE LO HI N: one pgbench session of N checkouts; prints the
# counts of its backend (callgrind's summary line: Ir Dr Dw I1mr D1mr D1mw
# ILmr DLmr DLmw Bc Bcm Bi Bim).  pgbench opens two connections (a first
# one of its own, then the client's), and a backend's file is written when
# it exits: once both files of the session are complete, the client's is the
# bigger count.
session() {
	local side=$1 lo=$2 hi=$3 n=$4 before f best c line counts_of_best done tries=0
	settle
	before=$(ls "$counts")
	"$PG_BINDIR/pgbench" -n -U bench_app -M prepared -c 1 -t $((n * 4)) \
		-f "$BENCH_DIR/${side}_checkout.sql" -D step=0 -D sku_lo="$lo" -D sku_hi="$hi" \
		>"$counts/pgbench.out" 2>&1 || { cat "$counts/pgbench.out" >&2; die "pgbench failed ($side)"; }
	grep -q '^number of failed transactions: 0 ' "$counts/pgbench.out" ||
		{ cat "$counts/pgbench.out" >&2; die "failed transactions ($side)"; }
	while :; do
		best=0 done=0
		for f in $(comm -13 <(echo "$before") <(ls "$counts")); do
			[[ $f == cg.* ]] || continue
			line=$(sed -n 's/^summary: //p' "$counts/$f")
			[ -n "$line" ] || continue
			c=${line%% *}
			done=$((done + 1))
			[ "$c" -gt "$best" ] && best=$c counts_of_best=$line
		done
		[ "$done" -ge 2 ] && break
		tries=$((tries + 1))
		[ $tries -lt 240 ] || die "no callgrind count for the $side session"
		sleep 0.5
	done
	echo "$counts_of_best"
}

# per_checkout A B: from two sessions' counts, one checkout's instructions,
# L1 misses (instruction, data), last-level misses, mispredicted branches and
# cycle estimate
per_checkout() {
	awk -v a="$1" -v b="$2" -v n=$((n2 - n1)) 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		for (i = 1; i <= 13; i++) d[i] = (y[i] - x[i]) / n
		ir = d[1]; i1 = d[4]; d1 = d[5] + d[6]; ll = d[7] + d[8] + d[9]; bm = d[11] + d[13]
		printf "%d %d %d %d %d %d\n", ir, i1, d1, ll, bm, ir + 10 * (i1 + d1 + bm) + 100 * ll
	}'
}

# a first pass, not reported: right after the server starts under valgrind,
# a backend's counts run about twice as high for a few minutes
for side in floor api; do
	log_step "warming up: $side, $n2 checkouts (not counted)"
	session "$side" 1 10000 "$n2" >/dev/null
done

report=$(make_tmpdir)/instructions.txt
ratios=$(make_tmpdir)/ratios.txt
{
	echo "checkout $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "make bench-instructions: per whole checkout (start; advance to price_lock; authorise;"
	echo "capture until stock_commit), one client, callgrind with its cache and branch simulation;"
	echo "sessions of $n1 and $n2 checkouts.  quiet = many skus, the extension's logging off."
	echo "Misses: L1 instruction, L1 data, last level; branches mispredicted; est. cycles ="
	echo "instructions + 10 x (L1 misses + mispredicted) + 100 x last-level misses"
	printf '%-7s %-9s %12s %9s %9s %6s %9s %12s\n' skus side instructions I1-miss D1-miss LL-miss br-miss est.cycles
} >"$report"
{
	echo
	echo "floor / extension (above 1: the extension costs less)"
	printf '%-7s %12s %12s\n' skus instructions est.cycles
} >"$ratios"
for mode in ${INSTR_MODES:-many hot striped quiet}; do
	case $mode in
	many | quiet) lo=1 hi=10000 ;;
	*) lo=0 hi=0 ;;
	esac
	# striped: the hot sku in INSTR_STRIPES stripes for the extension (the
	# floor's stays one row): what striping costs a checkout without contention
	if [ "$mode" = striped ]; then
		"$PG_BINDIR/psql" -X -q -c "SELECT checkout_stripe('S-0', ${INSTR_STRIPES:-16})" >/dev/null ||
			die "striping the hot sku failed"
	fi
	# quiet: each session is a new backend, which takes the role's setting
	logging=on
	[ "$mode" = quiet ] && logging=off
	"$PG_BINDIR/psql" -X -q -c "ALTER ROLE bench_app SET checkout.logging = $logging" >/dev/null ||
		die "setting checkout.logging failed"
	declare -A per
	for side in floor api; do
		log_step "$mode skus, $side: sessions of $n1 and $n2 checkouts"
		a=$(session "$side" "$lo" "$hi" "$n1")
		b=$(session "$side" "$lo" "$hi" "$n2")
		per[$side]=$(per_checkout "$a" "$b")
		echo "   $side: $(echo "${per[$side]}" | awk '{ print $1 " instructions, " $6 " estimated cycles per checkout" }')"
		printf '%-7s %-9s %12d %9d %9d %6d %9d %12d\n' "$mode" "${side/api/extension}" ${per[$side]} >>"$report"
	done
	awk -v m="$mode" -v f="${per[floor]}" -v a="${per[api]}" 'BEGIN {
		split(f, x, " "); split(a, y, " ")
		printf "%-7s %12.2f %12.2f\n", m, x[1] / y[1], x[6] / y[6]
	}' >>"$ratios"
done
cat "$ratios" >>"$report"
as_postgres "$PG_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null || true

log_step "results (a ratio is the extension's throughput as a share of the floor's, were both CPU-bound and the count the whole cost)"
cat "$report"
mkdir -p "$out"
cp "$report" "$out/instructions.txt"
echo "written to $out/instructions.txt"
