#!/usr/bin/env bash
# make test: install what is missing, build and install the extension, start a
# throwaway cluster and run every suite that exists:
#   pg_regress  sql/*.sql (not the extension script) against expected/*.out
#   isolation   test/isolation/specs/*.spec against test/isolation/expected/*.out
#   pgTAP       test/pgtap/*.sql and ../shared/contract/surface.sql, with pg_prove
#   TAP         test/t/*.pl with prove (each test starts its own clusters)
#   php         clients/laravel/tests/*.php (the Laravel package) with prove --exec php,
#               against the throwaway cluster (each file makes its own database)
# A failing suite does not stop the others.  The last line is "N passed, M failed"
# (tests, summed over the suites); the exit status is non-zero when M > 0 or a
# suite could not run.
#
# Environment: SUITES (default "regress isolation pgtap tap php"), SUITE_TIMEOUT
# (seconds per suite, default 600), PROVE_JOBS (parallel TAP files, default 1).
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT" || exit 1

SUITES=${SUITES:-regress isolation pgtap tap php}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-600}
PG_REGRESS=$PG_PGXS_TEST/regress/pg_regress
PG_ISOLATION_REGRESS=$PG_PGXS_TEST/isolation/pg_isolation_regress
CONTRACT=$(dirname "$REPO_ROOT")/shared/contract/surface.sql

total_pass=0
total_fail=0
summary=()
errored=()

record() {	# record SUITE PASSED FAILED NOTE
	total_pass=$((total_pass + $2))
	total_fail=$((total_fail + $3))
	summary+=("$(printf '  %-11s %4d passed, %4d failed  %s' "$1" "$2" "$3" "$4")")
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

suite_regress() {
	local tests=() f out rc p fl
	for f in sql/*.sql; do
		[ -e "$f" ] || continue
		case $(basename "$f") in checkout--*) continue ;; esac
		tests+=("$(basename "$f" .sql)")
	done
	if [ ${#tests[@]} -eq 0 ]; then
		echo "no pg_regress tests (sql/*.sql)"; record pg_regress 0 0 "(no tests)"; return
	fi
	out=$(make_tmpdir)
	run_logged "$out/run.log" "$PG_REGRESS" --inputdir=. --outputdir="$out" --bindir="$PG_BINDIR" \
		--host="$PGHOST" --port="$PGPORT" --user=postgres --dbname=contrib_regression \
		--load-extension=checkout "${tests[@]}"
	rc=$?
	read -r p fl < <(count_regress "$out/run.log")
	if [ "$fl" -gt 0 ] && [ -f "$out/regression.diffs" ]; then
		echo "---- regression.diffs (first 200 lines) ----"
		head -n 200 "$out/regression.diffs"
		echo "---- end of regression.diffs ----"
	fi
	[ "$rc" -ne 0 ] && [ "$fl" -eq 0 ] && suite_error pg_regress "pg_regress exited with $rc"
	record pg_regress "$p" "$fl" ""
}

suite_isolation() {
	local tests=() f out rc p fl
	for f in test/isolation/specs/*.spec; do
		[ -e "$f" ] || continue
		tests+=("$(basename "$f" .spec)")
	done
	if [ ${#tests[@]} -eq 0 ]; then
		echo "no isolation specs (test/isolation/specs/*.spec)"; record isolation 0 0 "(no tests)"; return
	fi
	out=$(make_tmpdir)
	run_logged "$out/run.log" "$PG_ISOLATION_REGRESS" --inputdir=test/isolation --outputdir="$out" \
		--bindir="$PG_BINDIR" --host="$PGHOST" --port="$PGPORT" --user=postgres \
		--dbname=isolation_regression --load-extension=checkout "${tests[@]}"
	rc=$?
	read -r p fl < <(count_regress "$out/run.log")
	if [ "$fl" -gt 0 ] && [ -f "$out/regression.diffs" ]; then
		echo "---- isolation regression.diffs (first 200 lines) ----"
		head -n 200 "$out/regression.diffs"
		echo "---- end of regression.diffs ----"
	fi
	[ "$rc" -ne 0 ] && [ "$fl" -eq 0 ] && suite_error isolation "pg_isolation_regress exited with $rc"
	record isolation "$p" "$fl" ""
}

suite_pgtap() {
	local files=() f out rc counts p fl
	if [ ! -f "$CONTRACT" ]; then
		suite_error pgTAP "contract file $CONTRACT is missing (shared/ must sit beside the repository)"
		record pgTAP 0 1 "(contract missing)"
		return
	fi
	for f in test/pgtap/*.sql; do
		[ -e "$f" ] && files+=("$f")
	done
	files+=("$CONTRACT")
	out=$(make_tmpdir)
	"$PG_BINDIR/psql" -X -q -d postgres -v ON_ERROR_STOP=1 \
		-c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS checkout_tap" -c "CREATE DATABASE checkout_tap" &&
	"$PG_BINDIR/psql" -X -q -d checkout_tap -v ON_ERROR_STOP=1 \
		-c "SET client_min_messages = warning" -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION checkout" || {
		suite_error pgTAP "could not prepare database checkout_tap"; record pgTAP 0 1 "(setup failed)"; return; }
	run_logged "$out/run.log" pg_prove --psql-bin "$PG_BINDIR/psql" --timer -d checkout_tap "${files[@]}"
	rc=$?
	counts=$(count_harness "$out/run.log")
	if [ -z "$counts" ]; then
		suite_error pgTAP "pg_prove printed no summary (exit $rc)"; record pgTAP 0 1 "(no summary)"; return
	fi
	read -r p fl <<<"$counts"
	[ "$rc" -ne 0 ] && [ "$fl" -eq 0 ] && suite_error pgTAP "pg_prove exited with $rc"
	record pgTAP "$p" "$fl" ""
}

suite_tap() {
	local files=() f work log rc counts p fl
	for f in test/t/*.pl; do
		[ -e "$f" ] && files+=("$f")
	done
	if [ ${#files[@]} -eq 0 ]; then
		echo "no TAP tests (test/t/*.pl)"; record TAP 0 0 "(no tests)"; return
	fi
	# a copy of the repository the postgres OS user can write (tmp_check/ goes there)
	work=$(make_tmpdir)
	tar -C "$REPO_ROOT" --exclude=./.git --exclude=./results --exclude=./tmp_check -cf - . |
		tar -C "$work" -xf - || { suite_error TAP "could not copy the repository"; return; }
	as_root chown -R postgres: "$work"
	log=$(make_tmpdir)/run.log
	run_logged "$log" "${AS_POSTGRES[@]}" env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE \
		-C "$work" \
		PATH="$PG_BINDIR:$PATH" \
		PERL5LIB="$PG_PGXS_TEST/perl${PERL5LIB:+:$PERL5LIB}" \
		PG_REGRESS="$PG_REGRESS" PG_CONFIG="$PG_CONFIG" \
		prove --timer -j "${PROVE_JOBS:-1}" "${files[@]}"
	rc=$?
	counts=$(count_harness "$log")
	# the end of the log of each failing test file
	for f in $(sed -nE 's/^(test\/t\/[^ ]+\.pl) +\(Wstat: .*/\1/p' "$log"); do
		f=$work/tmp_check/log/regress_log_$(basename "$f" .pl)
		as_postgres test -f "$f" || continue
		echo "---- last 40 lines of $f ----"
		as_postgres tail -n 40 "$f"
	done
	if [ -z "$counts" ]; then
		suite_error TAP "prove printed no summary (exit $rc)"; record TAP 0 1 "(no summary)"; return
	fi
	read -r p fl <<<"$counts"
	[ "$rc" -ne 0 ] && [ "$fl" -eq 0 ] && suite_error TAP "prove exited with $rc"
	record TAP "$p" "$fl" ""
}

# The Laravel package's tests: PHP CLI with Laravel's components from Debian's
# packages, connecting as the superuser to PGHOST/PGPORT (start_cluster); each
# file creates (and drops) a database of its own, not swept by the worker, and
# the login roles checkout_php_app / checkout_php_admin.
suite_php() {
	local files=() f log rc counts p fl
	for f in clients/laravel/tests/*.php; do
		[ -e "$f" ] && files+=("$f")
	done
	if [ ${#files[@]} -eq 0 ]; then
		echo "no PHP tests (clients/laravel/tests/*.php)"; record php 0 0 "(no tests)"; return
	fi
	log=$(make_tmpdir)/run.log
	run_logged "$log" env PGDATABASE=postgres prove --timer --exec php "${files[@]}"
	rc=$?
	counts=$(count_harness "$log")
	if [ -z "$counts" ]; then
		suite_error php "prove printed no summary (exit $rc)"; record php 0 1 "(no summary)"; return
	fi
	read -r p fl <<<"$counts"
	[ "$rc" -ne 0 ] && [ "$fl" -eq 0 ] && suite_error php "prove exited with $rc"
	record php "$p" "$fl" ""
}

started=$(date +%s)
ensure_packages
build_install
start_cluster

for s in $SUITES; do
	case $s in
	regress) log_step "pg_regress"; suite_regress ;;
	isolation) log_step "isolation"; suite_isolation ;;
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
