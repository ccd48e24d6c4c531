#!/usr/bin/env bash
# make fuzz: sqlsmith throws random SQL (including calls of the checkout API
# with random arguments) at a database holding live checkouts, then checks
# that the server never crashed and that the ledger invariants still hold.
# Not part of `make test`: it is random and takes a few minutes.
# Environment: FUZZ_QUERIES (default 20000), FUZZ_SEED (default: random).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

CHECKOUT_PACKAGES+=(sqlsmith)
ensure_packages
build_install
start_cluster

queries=${FUZZ_QUERIES:-20000}
seed=${FUZZ_SEED:-$RANDOM}
log_step "seeding live checkouts"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION checkout;
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('F-1', 50, 100), ('F-2', 5, 7);
SELECT checkout_advance(s.lock_id, 'sess-' || g, until => 'price_lock')
FROM generate_series(1, 10) g,
     LATERAL checkout_start('fuzz-' || g, 'sess-' || g,
       '[{"line_id":"1","sku":"F-1","quantity":2,"unit_price":100},{"line_id":"2","sku":"F-2","quantity":1,"unit_price":7}]') s;
SQL

log_step "sqlsmith: $queries queries, seed $seed"
timeout 1200 sqlsmith --target="host=$PGHOST port=$PGPORT user=postgres dbname=$PGDATABASE" \
	--max-queries="$queries" --seed="$seed" --exclude-catalog >/dev/null 2>&1 || true

log_step "checks"
crashes=$(cluster_log | grep -c "terminated by signal" || true)
broken=$(psql -X -At -c "SELECT count(*) FROM checkout.inventory i
	WHERE i.reserved <> COALESCE((SELECT sum(quantity) FROM checkout.reservations r WHERE r.sku = i.sku), 0)
	   OR i.reserved < 0 OR i.reserved > i.on_hand")
echo "server processes terminated by a signal: $crashes"
echo "skus whose ledger disagrees with held reservations: $broken"
passed=0; failed=0
[ "$crashes" -eq 0 ] && passed=$((passed + 1)) || failed=$((failed + 1))
[ "$broken" -eq 0 ] && passed=$((passed + 1)) || failed=$((failed + 1))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
