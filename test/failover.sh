#!/usr/bin/env bash
# make failover: the long form of test/t/100_failover_pg_auto_failover.pl —
# more clients, longer load, the monitor's production timeouts (20 s to call a
# node unhealthy, 30 s for a lost primary to demote) and three faults in turn:
# kill -9 of a node (pg_autoctl and postmaster), `pg_autoctl stop --immediate`,
# and kill -9 of the postmaster alone (pg_autoctl restarts it in place: a
# crash restart, no failover).  Prints the figures: failover time seen by
# clients, checkouts retried, units accounted for.
#
# Environment: CHECKOUT_FAILOVER_CLIENTS (16), CHECKOUT_FAILOVER_LOAD (20 s),
# CHECKOUT_FAILOVER_FAULTS ("kill9 stop_immediate postmaster_only"),
# CHECKOUT_FAILOVER_MONITOR_DEFAULTS (1).  HA_TESTS names other test/t files
# to run the same way, as paths under t/ (e.g. HA_TESTS="t/110_pgbouncer_transaction_pool.pl").
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT" || exit 1

ensure_packages
build_install

# a copy the postgres OS user can read (the tests run as postgres)
work=$(make_tmpdir)
cp -a test/t "$work/t" || die "could not copy test/t"
as_root chown -R postgres: "$work"

log_step "failover, long form"
as_postgres env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -C "$work" \
	PATH="$PG_BINDIR:$PATH" \
	PERL5LIB="$PG_PGXS_TEST/perl${PERL5LIB:+:$PERL5LIB}" \
	CHECKOUT_FAILOVER_CLIENTS="${CHECKOUT_FAILOVER_CLIENTS:-16}" \
	CHECKOUT_FAILOVER_LOAD="${CHECKOUT_FAILOVER_LOAD:-20}" \
	CHECKOUT_FAILOVER_FAULTS="${CHECKOUT_FAILOVER_FAULTS:-kill9 stop_immediate postmaster_only}" \
	CHECKOUT_FAILOVER_MONITOR_DEFAULTS="${CHECKOUT_FAILOVER_MONITOR_DEFAULTS:-1}" \
	prove -v --timer ${HA_TESTS:-t/100_failover_pg_auto_failover.pl}
