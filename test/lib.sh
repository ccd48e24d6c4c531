# test/lib.sh — helpers sourced by the harness scripts (run_tests.sh, demo.sh,
# bench/run_bench.sh, stress.sh).  Works as root (CI) or as a sudo-capable user
# on Debian 12 with PostgreSQL 15.
#
#   ensure_packages          apt-get install whatever of CHECKOUT_PACKAGES is missing
#                            (skips apt when nothing is); CHECKOUT_PACKAGES starts as
#                            DEMO_PACKAGES, a script appends what else it needs
#   build_install            make && make install against PostgreSQL 15's pg_config
#   start_cluster [LINE...]  throwaway cluster as the postgres OS user; extra lines go to
#                            postgresql.conf; exports PGHOST PGPORT PGUSER PGDATABASE and
#                            CLUSTER_DIR, CLUSTER_LOG; stopped and removed on exit
#   make_tmpdir              a temporary directory removed on exit
#   as_postgres CMD...       run CMD as the postgres OS user
#   as_root CMD...           run CMD as root (sudo when not root)
#
# Environment knobs: CHECKOUT_TEST_DB (default checkout_test), CHECKOUT_NO_PRELOAD=1
# (leave shared_preload_libraries out; for debugging the harness only),
# CHECKOUT_PORTS (range the cluster's port is picked from, default 5440-6439).

# PG_BINDIR may point at a relocated copy of PostgreSQL 15 (test/private_pg.sh;
# docs/testing.md); the default is Debian's.
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PG_CONFIG=$PG_BINDIR/pg_config
export PG_CONFIG

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What `make demo` needs: the server (with pgbench) and a PGXS build of the
# extension.  The scripts that need more add it to CHECKOUT_PACKAGES before
# calling ensure_packages: `make test` adds TEST_PACKAGES, the benchmarks gnuplot
# or valgrind, `make fuzz` sqlsmith.
DEMO_PACKAGES=(postgresql-15 postgresql-server-dev-15 make gcc)
# What `make test` adds: the TAP harness (IPC::Run), pgTAP and pg_prove, the
# Laravel package's PHP, the monitoring tests' Prometheus, exporter and YAML
# parser, the high-availability tests' pg_auto_failover and PgBouncer, and
# pgaudit for the test that executor hooks see every write, and the formatter
# whose layout test/t/006_indent.pl checks.
TEST_PACKAGES=(libipc-run-perl postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
               php-cli php-pgsql php-laravel-framework phpunit
               prometheus-postgres-exporter prometheus libyaml-libyaml-perl
               postgresql-15-auto-failover pgbouncer postgresql-15-pgaudit
               clang-format-14)
CHECKOUT_PACKAGES=("${DEMO_PACKAGES[@]}")

CLUSTER_DIR=
CLUSTER_LOG=

log_step() { printf '\n==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "not root and sudo is not installed: cannot run '$*'"
	fi
}

# the command prefix that runs a program as the postgres OS user
if [ "$(id -u)" -eq 0 ]; then
	AS_POSTGRES=(runuser -u postgres --)
else
	AS_POSTGRES=(sudo -u postgres)
fi

# (from /: the caller's directory may be closed to postgres; paths are absolute)
as_postgres() {
	(cd / && "${AS_POSTGRES[@]}" "$@")
}

ensure_packages() {
	local missing=() p status
	for p in "${CHECKOUT_PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[ "$status" = installed ] || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "packages: all present (${CHECKOUT_PACKAGES[*]})"
		return 0
	fi
	log_step "installing ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null ||
		die "apt-get update failed"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 \
		"${missing[@]}" || die "apt-get install ${missing[*]} failed"
}

# A private copy of PostgreSQL (test/private_pg.sh) made before ensure_packages
# installed a package (pgaudit, pgtap) lacks its files: copy in what is
# missing, never over a file the copy has (its own build of checkout).
sync_private_pg() {
	local copy
	copy=$(cd "$PG_BINDIR/.." && pwd) || return 0
	[ "$copy" = /usr/lib/postgresql/15 ] && return 0
	[ -d "$copy/../../../share/postgresql/15" ] || return 0
	cp -an /usr/lib/postgresql/15/lib/. "$copy/lib/" &&
		cp -an /usr/share/postgresql/15/extension/. "$copy/../../../share/postgresql/15/extension/"
}

build_install() {
	log_step "building and installing the extension"
	sync_private_pg || echo "warning: could not copy newly installed packages into the private PostgreSQL at $PG_BINDIR"
	(cd "$REPO_ROOT" && make -s PG_CONFIG="$PG_CONFIG") || die "build failed"
	(cd "$REPO_ROOT" && as_root make -s install PG_CONFIG="$PG_CONFIG") >/dev/null ||
		die "make install failed"
}

# every make_tmpdir directory lives under one root made now, so that a call in
# a command substitution ($(make_tmpdir)) is still removed at exit
CHECKOUT_TMPROOT=$(mktemp -d "${TMPDIR:-/tmp}/checkout_run.XXXXXX") || die "mktemp failed"
chmod 755 "$CHECKOUT_TMPROOT"
_checkout_tmpdirs=("$CHECKOUT_TMPROOT")

make_tmpdir() {
	mktemp -d "$CHECKOUT_TMPROOT/tmp.XXXXXX" || die "mktemp failed"
}

_checkout_cleanup() {
	local d
	if [ -n "$CLUSTER_DIR" ] && [ -d "$CLUSTER_DIR/data" ]; then
		as_postgres "$PG_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	for d in ${CLUSTER_DIR:+"$CLUSTER_DIR"} "${_checkout_tmpdirs[@]}"; do
		[ -n "$d" ] && [ -d "$d" ] && as_root rm -rf "$d"
	done
	CLUSTER_DIR=
	_checkout_tmpdirs=()
}

_checkout_install_traps() {
	trap '_checkout_cleanup' EXIT
	trap '_checkout_cleanup; trap - EXIT; exit 130' INT
	trap '_checkout_cleanup; trap - EXIT; exit 143' TERM
}
_checkout_install_traps

_port_free() {
	local port=$1
	[ -e "/tmp/.s.PGSQL.$port" ] && return 1
	[ -e "/var/run/postgresql/.s.PGSQL.$port" ] && return 1
	if command -v ss >/dev/null 2>&1; then
		ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 1
	fi
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		return 1
	fi
	return 0
}

# start_cluster [extra postgresql.conf lines...]
start_cluster() {
	local db=${CHECKOUT_TEST_DB:-checkout_test} port line tries=0 out
	local ports=${CHECKOUT_PORTS:-5440-6439}
	local port_lo=${ports%-*} port_hi=${ports#*-}
	log_step "starting a throwaway cluster"
	CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/checkout_pg.XXXXXX") || die "mktemp failed"
	# the directory holds the socket: traversable by the caller, owned by postgres
	as_root chown postgres: "$CLUSTER_DIR"
	as_root chmod 755 "$CLUSTER_DIR"
	CLUSTER_LOG=$CLUSTER_DIR/postgres.log

	out=$(as_postgres "$PG_BINDIR/initdb" -D "$CLUSTER_DIR/data" -U postgres --auth=trust \
		--no-sync -E UTF8 --locale=C.UTF-8 2>&1) || { printf '%s\n' "$out" >&2; die "initdb failed"; }

	while :; do
		port=$((port_lo + RANDOM % (port_hi - port_lo + 1)))
		_port_free "$port" && break
		tries=$((tries + 1))
		[ $tries -lt 50 ] || die "no free port found"
	done

	{
		echo "# checkout test harness"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$CLUSTER_DIR'"
		echo "port = $port"
		if [ -z "${CHECKOUT_NO_PRELOAD:-}" ]; then
			echo "shared_preload_libraries = 'checkout'"
			echo "checkout.database = '$db'"
			echo "checkout.cleanup_interval = '5s'"
		fi
		echo "fsync = off"
		echo "synchronous_commit = off"
		echo "full_page_writes = off"
		echo "logging_collector = off"
		echo "log_line_prefix = '%m [%p] %q%u@%d '"
		echo "max_connections = 100"
		echo "max_prepared_transactions = 10"
		for line in "$@"; do
			echo "$line"
		done
	} | as_postgres tee -a "$CLUSTER_DIR/data/postgresql.conf" >/dev/null

	as_postgres "$PG_BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_LOG" -w -t 60 start >/dev/null || {
		as_postgres tail -n 30 "$CLUSTER_LOG" >&2 || true
		die "the cluster did not start"; }

	export PGHOST=$CLUSTER_DIR PGPORT=$port PGUSER=postgres PGDATABASE=$db
	"$PG_BINDIR/psql" -X -q -d postgres -v ON_ERROR_STOP=1 \
		-c "CREATE DATABASE \"$db\"" >/dev/null || die "could not create database $db"
	echo "cluster up: PGHOST=$PGHOST PGPORT=$PGPORT PGDATABASE=$PGDATABASE (log: $CLUSTER_LOG)"
}

# cluster_log: print the server log (it is readable by postgres only)
cluster_log() {
	as_postgres cat "$CLUSTER_LOG"
}
