#!/usr/bin/env bash
# test/private_pg.sh DIR — copy Debian's PostgreSQL 15 (binaries, libraries,
# share) under DIR and print its bindir.  PostgreSQL finds its share and lib
# directories relative to its binaries, so `PG_BINDIR=$(bash test/private_pg.sh
# DIR) make test` builds, installs and tests against the copy: several
# checkouts of the repository can run their suites at once without
# overwriting each other's installed extension.
set -euo pipefail
dir=${1:?usage: test/private_pg.sh DIR}
if [ ! -x "$dir/usr/lib/postgresql/15/bin/postgres" ]; then
	mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql"
	cp -a /usr/lib/postgresql/15 "$dir/usr/lib/postgresql/"
	cp -a /usr/share/postgresql/15 "$dir/usr/share/postgresql/"
	chmod 755 "$dir"
fi
# headers are only read: a link is enough for PGXS builds against the copy
if [ ! -e "$dir/usr/include/postgresql" ]; then
	mkdir -p "$dir/usr/include"
	ln -s /usr/include/postgresql "$dir/usr/include/postgresql"
fi
echo "$dir/usr/lib/postgresql/15/bin"
