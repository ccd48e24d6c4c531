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
# CHECKOUT_FAILOVER_MONITOR_DEFAULTS (1).  HA_TESTS names other TAP files to
# run the same way (e.g. HA_TESTS="test/t/110_pgbouncer_transaction_pool.pl").
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT" || exit 1

# prove with IPC::Run, pg_auto_failover, and PgBouncer for HA_TESTS that name 110
CHECKOUT_PACKAGES+=(libipc-run-perl postgresql-15-auto-failover pgbouncer)
ensure_packages
build_install

# a copy of the repository the postgres OS user can write (tmp_check/ goes there)
work=$(make_tmpdir)
tar -C "$REPO_ROOT" --exclude=./.git --exclude=./results --exclude=./tmp_check -cf - . |
	tar -C "$work" -xf - || die "could not copy the repository"
as_root chown -R postgres: "$work"

log_step "failover, long form"
as_postgres env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE \
	CHECKOUT_FAILOVER_CLIENTS="${CHECKOUT_FAILOVER_CLIENTS:-16}" \
	CHECKOUT_FAILOVER_LOAD="${CHECKOUT_FAILOVER_LOAD:-20}" \
	CHECKOUT_FAILOVER_FAULTS="${CHECKOUT_FAILOVER_FAULTS:-kill9 stop_immediate postmaster_only}" \
	CHECKOUT_FAILOVER_MONITOR_DEFAULTS="${CHECKOUT_FAILOVER_MONITOR_DEFAULTS:-1}" \
	make -s -C "$work" PG_CONFIG="$PG_CONFIG" prove_installcheck PROVE_FLAGS="-v --timer" \
	PROVE_TESTS="${HA_TESTS:-test/t/100_failover_pg_auto_failover.pl}"
