#!/usr/bin/env bash
# make bench-instructions: the CPU cost of a whole checkout counted in
# instructions by valgrind's callgrind, for the extension and the DML floor
# (the same scripts as make bench: api_checkout.sql, floor_checkout.sql), over
# many skus, on one hot sku and on it striped, one client.  A count does not move with the
# load of a shared machine, as throughput does (make bench's points swing by
# up to ±20 % between runs minutes apart), so a change that saves 1 % shows.
#
# The server runs under callgrind; each pgbench session is one backend, whose
# count is written when it exits.  Each side runs a session of N1 and one of
# N2 checkouts: (count(N2) - count(N1)) / (N2 - N1) is the cost of one
# checkout, without backend start-up, catalog loading and first plans.
#
# Environment: INSTR_N1 (100), INSTR_N2 (400) checkouts per session;
# INSTR_OUT (test/bench/results) where instructions.txt goes.
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
as_postgres bash -c "valgrind --tool=callgrind --trace-children=yes \
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
# instruction count of its backend.  pgbench opens two connections (a first
# one of its own, then the client's), and a backend's file is written when
# it exits: once both files of the session are complete, the client's is the
# bigger count.
session() {
	local side=$1 lo=$2 hi=$3 n=$4 before f best c done tries=0
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
			c=$(sed -n 's/^summary: //p' "$counts/$f")
			[ -n "$c" ] || continue
			done=$((done + 1))
			[ "$c" -gt "$best" ] && best=$c
		done
		[ "$done" -ge 2 ] && break
		tries=$((tries + 1))
		[ $tries -lt 240 ] || die "no callgrind count for the $side session"
		sleep 0.5
	done
	echo "$best"
}

# a first pass, not reported: right after the server starts under valgrind,
# a backend's counts run about twice as high for a few minutes
for side in floor api; do
	log_step "warming up: $side, $n2 checkouts (not counted)"
	session "$side" 1 10000 "$n2" >/dev/null
done

report=$(make_tmpdir)/instructions.txt
{
	echo "checkout $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "make bench-instructions: instructions per whole checkout (start; advance to price_lock;"
	echo "authorise; capture until stock_commit), one client, callgrind; sessions of $n1 and $n2 checkouts"
	printf '%-5s %14s %14s %8s\n' skus floor extension ratio
} >"$report"
for mode in ${INSTR_MODES:-many hot striped}; do
	if [ "$mode" = many ]; then lo=1 hi=10000; else lo=0 hi=0; fi
	# striped: the hot sku in INSTR_STRIPES stripes for the extension (the
	# floor's stays one row): what striping costs a checkout without contention
	if [ "$mode" = striped ]; then
		"$PG_BINDIR/psql" -X -q -c "SELECT checkout_stripe('S-0', ${INSTR_STRIPES:-16})" >/dev/null ||
			die "striping the hot sku failed"
	fi
	declare -A per
	for side in floor api; do
		log_step "$mode skus, $side: sessions of $n1 and $n2 checkouts"
		a=$(session "$side" "$lo" "$hi" "$n1")
		b=$(session "$side" "$lo" "$hi" "$n2")
		per[$side]=$(((b - a) / (n2 - n1)))
		echo "   ($side: $a instructions in the session of $n1, $b in that of $n2)" >&2
		echo "   $side: ${per[$side]} instructions per checkout"
	done
	awk -v m="$mode" -v f="${per[floor]}" -v a="${per[api]}" \
		'BEGIN { printf "%-5s %14d %14d %8.2f\n", m, f, a, f / a }' >>"$report"
done
as_postgres "$PG_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -m fast -w stop >/dev/null || true

log_step "results (ratio = floor / extension: the extension's throughput as a share of the floor's, were both CPU-bound)"
cat "$report"
mkdir -p "$out"
cp "$report" "$out/instructions.txt"
echo "written to $out/instructions.txt"
