#!/usr/bin/env bash
# make test: install what is missing, build and install the extension, start a
# throwaway cluster and run every suite through the Makefile's own targets, so
# the test lists declared there are the only ones:
#   pg_regress  make installcheck with REGRESS only     (sql/*.sql, expected/)
#   pg_regress_sql  the same with checkout.direct_access off (PGOPTIONS): every
#               read and write of the extension's tables by SQL statements, and
#               the same expected output
#   isolation   make installcheck with ISOLATION only   (test/isolation/)
#   isolation_sql   the same with checkout.direct_access off
#   pgTAP       make pgtap_installcheck                 (test/pgtap/*.sql, and the
#               contract ../shared/contract/surface.sql when it is there)
#   TAP         make prove_installcheck                 (test/t/*.pl; each test starts
#               its own clusters, as the postgres OS user in a copy it can write)
#   php         make php_installcheck                   (clients/laravel/tests/*.php,
#               the Laravel package; each file makes a database of its own)
# A failing suite does not stop the others.  The last line is "N passed, M failed"
# (tests, summed over the suites); the exit status is non-zero when M > 0 or a
# suite could not run.
#
# Environment: SUITES (default "regress regress_sql isolation isolation_sql pgtap
# tap php"), SUITE_TIMEOUT (seconds per suite, default 600), PROVE_JOBS
# (parallel TAP files, default 1), PROVE_TESTS (the TAP files to run, e.g.
# "test/t/090_docs_snippets.pl"; default every test/t/*.pl).
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT" || exit 1

SUITES=${SUITES:-regress regress_sql isolation isolation_sql pgtap tap php}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-600}
MAKE=(make -s PG_CONFIG="$PG_CONFIG")

total_pass=0
total_fail=0
summary=()
errored=()

record() {	# record SUITE PASSED FAILED NOTE
	total_pass=$((total_pass + $2))
	total_fail=$((total_fail + $3))
	summary+=("$(printf '  %-15s %4d passed, %4d failed  %s' "$1" "$2" "$3" "$4")")
}

suite_error() {	# suite_error SUITE MESSAGE
	errored+=("$1")
	echo "!! $1: $2"
}

# Count "... ok" / "... FAILED" lines of pg_regress-style output (PG15 format,
# and the TAP format of later pg_regress versions).
count_regress() {	# count_regress LOGFILE -> "PASS FAIL"
	local p f
	p=$(grep -cE '\.\.\. +ok( |$)|^ok [0-9]+ ' "$1")
	f=$(grep -cE '\.\.\. +(FAILED|failed)|^not ok [0-9]+ ' "$1")
	echo "$p $f"
}

# Count a TAP::Harness summary (prove, pg_prove): Tests=T from the Files= line;
# failed subtests from "(Wstat: W Tests: T Failed: F)"; a listed file with no
# failed subtest (died, bad plan) counts one failure.  Prints "PASS FAIL" or
# nothing when there is no summary.
count_harness() {	# count_harness LOGFILE
	local total
	total=$(sed -nE 's/^Files=[0-9]+, Tests=([0-9]+),.*/\1/p' "$1" | tail -n 1)
	[ -n "$total" ] || return 0
	awk -v total="$total" '
		/\(Wstat: [0-9]+.* Tests: [0-9]+ Failed: [0-9]+\)/ {
			match($0, /Failed: [0-9]+/)
			n = substr($0, RSTART + 8, RLENGTH - 8) + 0
			if (n > 0) subfail += n; else extra++
		}
		END { p = total - subfail; if (p < 0) p = 0; print p, subfail + extra }' "$1"
}

run_logged() {	# run_logged LOGFILE CMD... : show the output and keep a copy
	local log=$1 rc
	shift
	timeout --kill-after=15 "$SUITE_TIMEOUT" "$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	[ "$rc" -eq 124 ] && echo "!! timed out after ${SUITE_TIMEOUT}s" | tee -a "$log"
	return "$rc"
}

# suite_pg_regress SUITE DIFFS MAKE-ARGS...: a pg_regress-driven suite
# (pg_regress, pg_isolation_regress) run by `make installcheck`
suite_pg_regress() {
	local name=$1 diffs=$2 log rc p fl
	shift 2
	log=$(make_tmpdir)/run.log
	run_logged "$log" "${MAKE[@]}" installcheck TAP_TESTS= "$@"
	rc=$?
	read -r p fl < <(count_regress "$log")
	if [ "$fl" -gt 0 ] && [ -f "$diffs" ]; then
		echo "---- $diffs (first 200 lines) ----"
		head -n 200 "$diffs"
		echo "---- end of $diffs ----"
	fi
	[ "$rc" -ne 0 ] && [ "$fl" -eq 0 ] && suite_error "$name" "make installcheck exited with $rc"
	record "$name" "$p" "$fl" ""
}

# suite_sql_path SUITE DIFFS MAKE-ARGS...: suite_pg_regress with
# checkout.direct_access off in PGOPTIONS, which every psql and
# isolationtester session of `make installcheck` passes to its backend, once a
# session shows it off (a build without the setting refuses the connection:
# the suite then counts as one failure)
suite_sql_path() {
	local -x PGOPTIONS="${PGOPTIONS:+$PGOPTIONS }-c checkout.direct_access=off"
	local setting
	setting=$("$PG_BINDIR/psql" -X -A -t -c 'SHOW checkout.direct_access' 2>&1)
	if [ "$setting" != off ]; then
		suite_error "$1" "a session with PGOPTIONS='$PGOPTIONS' does not show checkout.direct_access off: $setting"
		record "$1" 0 1 "(checkout.direct_access not off)"
		return
	fi
	suite_pg_regress "$@"
}

# suite_harness SUITE LOG NOTE: count a prove / pg_prove run that exited RC
suite_harness() {
	local name=$1 log=$2 rc=$3 note=$4 counts p fl
	counts=$(count_harness "$log")
	if [ -z "$counts" ]; then
		suite_error "$name" "no test summary (exit $rc)"; record "$name" 0 1 "(no summary)"; return
	fi
	read -r p fl <<<"$counts"
	[ "$rc" -ne 0 ] && [ "$fl" -eq 0 ] && suite_error "$name" "exited with $rc"
	record "$name" "$p" "$fl" "$note"
}

suite_pgtap() {
	local log rc
	log=$(make_tmpdir)/run.log
	run_logged "$log" "${MAKE[@]}" pgtap_installcheck PROVE_FLAGS=--timer
	rc=$?
	# the target says whether the optional contract file ran
	suite_harness pgTAP "$log" "$rc" "$(grep -m 1 -E '^with(out)? contract' "$log")"
}

suite_tap() {
	local work log rc f
	# a copy of the repository the postgres OS user can write (tmp_check/ goes there)
	work=$(make_tmpdir)
	tar -C "$REPO_ROOT" --exclude=./.git --exclude=./results --exclude=./tmp_check --exclude=./output_iso -cf - . |
		tar -C "$work" -xf - || { suite_error TAP "could not copy the repository"; return; }
	as_root chown -R postgres: "$work"
	log=$(make_tmpdir)/run.log
	run_logged "$log" "${AS_POSTGRES[@]}" env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE \
		"${MAKE[@]}" -C "$work" prove_installcheck PROVE_FLAGS="--timer -j ${PROVE_JOBS:-1}" \
		${PROVE_TESTS:+PROVE_TESTS="$PROVE_TESTS"}
	rc=$?
	# the end of the log of each failing test file
	for f in $(sed -nE 's/^(test\/t\/[^ ]+\.pl) +\(Wstat: .*/\1/p' "$log"); do
		f=$work/tmp_check/log/regress_log_$(basename "$f" .pl)
		as_postgres test -f "$f" || continue
		echo "---- last 40 lines of $f ----"
		as_postgres tail -n 40 "$f"
	done
	suite_harness TAP "$log" "$rc" ""
}

suite_php() {
	local log rc
	log=$(make_tmpdir)/run.log
	run_logged "$log" "${MAKE[@]}" php_installcheck PROVE_FLAGS=--timer
	rc=$?
	suite_harness php "$log" "$rc" ""
}

started=$(date +%s)
CHECKOUT_PACKAGES+=("${TEST_PACKAGES[@]}")
ensure_packages
build_install
start_cluster

for s in $SUITES; do
	case $s in
	regress) log_step "pg_regress"; suite_pg_regress pg_regress regression.diffs ISOLATION= ;;
	isolation) log_step "isolation"; suite_pg_regress isolation output_iso/regression.diffs REGRESS= ;;
	regress_sql)
		log_step "pg_regress, checkout.direct_access off"
		suite_sql_path pg_regress_sql regression.diffs ISOLATION= ;;
	isolation_sql)
		log_step "isolation, checkout.direct_access off"
		suite_sql_path isolation_sql output_iso/regression.diffs REGRESS= ;;
	pgtap) log_step "pgTAP"; suite_pgtap ;;
	tap) log_step "TAP (prove)"; suite_tap ;;
	php) log_step "PHP (Laravel package)"; suite_php ;;
	*) suite_error "$s" "unknown suite" ;;
	esac
done

log_step "summary ($(( $(date +%s) - started ))s)"
printf '%s\n' "${summary[@]}"
[ ${#errored[@]} -gt 0 ] && echo "  suites that could not run cleanly: ${errored[*]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ ${#errored[@]} -eq 0 ]
