#!/usr/bin/env bash
# make flash: an abandoned flash sale.  30,000 checkouts reserve one hot sku
# and are abandoned; their deadlines are then moved to the same instant (as
# if all had started together), and the background worker must release them
# all within seconds of it while new checkouts of the same sku go on.  Prints the time from the last deadline to the last release, the
# throughput of the concurrent checkouts, and the ledger invariants.  The
# hot sku is striped (issue 22): its reservations, releases and sales spread
# over FLASH_STRIPES rows of checkout.inventory_stripes, and the invariants
# are checked on its live totals (checkout.stock) and on every stripe
# (checkout_verify()).
# Environment: FLASH_LOCKS (default 30000), FLASH_STRIPES (default 8; 1
# leaves the sku unstriped).  The worker rebalances the stripes every
# checkout.rebalance_interval (1s).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"
ensure_packages
build_install
start_cluster "checkout.cleanup_interval = '5min'"

n=${FLASH_LOCKS:-30000}
stripes=${FLASH_STRIPES:-8}
stock=10000000
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION checkout;
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES ('HOT', $stock, 100);
CREATE SEQUENCE flash_seq;
SQL
[ "$stripes" -gt 1 ] && psql -X -q -c "SELECT checkout_stripe('HOT', $stripes)" >/dev/null
echo "HOT: $stock units in $(psql -X -At -c "SELECT stripes FROM checkout.stock WHERE sku = 'HOT'") stripe(s)"
script=$(make_tmpdir)
cat > "$script/abandon.sql" <<'SQL'
SELECT checkout_advance(s.lock_id, 'abandoner', until => 'price_lock')
FROM checkout_start('flash-' || nextval('flash_seq'), 'abandoner',
  '[{"line_id":"1","sku":"HOT","quantity":1,"unit_price":100}]', interval '1 hour') s;
SQL
cat > "$script/buy.sql" <<'SQL'
SELECT checkout_advance(s.lock_id, 'buyer', '{"reference":"c","amount":100}', until => 'stock_commit')
FROM (SELECT checkout_advance(s.lock_id, 'buyer', '{"reference":"a","amount":100}', until => 'order_creation') AS x, s.lock_id
      FROM checkout_start('buy-' || nextval('flash_seq'), 'buyer', '[{"line_id":"1","sku":"HOT","quantity":1,"unit_price":100}]') s) s;
SQL
log_step "reserving $n abandoned checkouts (a progress line every 10s)"
"$PG_BINDIR/pgbench" -n -P 10 -c 4 -j 2 -t $((n / 4)) -f "$script/abandon.sql" 2>&1 |
	sed -Eun -e 's/^progress: /   reserving: /p' -e '/^(tps|number of failed)/p'
# all fall due 5 s from now; one more abandoned checkout with that deadline
# tells the worker (the UPDATE alone, behind the API's back, would not)
last_due=$(psql -X -At -c "SELECT now() + interval '5 seconds'")
psql -X -q -c "UPDATE checkout.locks SET expires_at = '$last_due' WHERE session_id = 'abandoner'"
psql -X -q -c "SELECT checkout_advance(s.lock_id, 'abandoner', until => 'price_lock') FROM checkout_start('flash-last', 'abandoner', '[{\"line_id\":\"1\",\"sku\":\"HOT\",\"quantity\":1,\"unit_price\":100}]', '$last_due'::timestamptz - now()) s" >/dev/null
echo "reserved: $(psql -X -At -c "SELECT reserved FROM checkout.stock WHERE sku = 'HOT'"); last deadline $last_due"

wait_s=$(psql -X -At -c "SELECT greatest(0, extract(epoch FROM '$last_due'::timestamptz - clock_timestamp()))::int")
log_step "buying the same sku for $((wait_s + 15))s while the worker releases them (a line every 2s)"
"$PG_BINDIR/pgbench" -n -c 2 -j 2 -T $((wait_s + 15)) -f "$script/buy.sql" 2>&1 | grep -E '^(tps|number of failed)' &
buyers=$!
polls=0
while :; do
	left=$(psql -X -At -c "SELECT count(*) FROM checkout.locks WHERE session_id = 'abandoner' AND state = 'active'")
	[ "$left" = 0 ] && break
	[ $((polls % 4)) = 0 ] && echo "   $left abandoned checkouts still active; $(psql -X -At -c \
		"SELECT count(*) FROM checkout.locks WHERE session_id = 'buyer' AND state = 'completed'") bought so far"
	polls=$((polls + 1))
	sleep 0.5
done
lag=$(psql -X -At -c "SELECT round(extract(epoch FROM max(finished_at) - '$last_due'::timestamptz)::numeric, 2) FROM checkout.locks WHERE session_id = 'abandoner'")
spread=$(psql -X -At -c "SELECT round(extract(epoch FROM max(finished_at) - min(finished_at))::numeric, 2) FROM checkout.locks WHERE session_id = 'abandoner'")
echo "   all released; the buyers go on until their time is up"
wait $buyers
echo "all $n released; last release ${lag}s after the last deadline; releases spread over ${spread}s"
# live totals (checkout.stock): reserved = what the reservations hold, never
# oversold (0 <= reserved <= on_hand, on_hand + sold = the stock), and every
# stripe's reserved = its reservations' (checkout_verify)
broken=$(psql -X -At -c "SELECT count(*) FROM checkout.stock s WHERE s.reserved <> COALESCE((SELECT sum(quantity) FROM checkout.reservations r WHERE r.sku = s.sku), 0)")
echo "ledger invariant (reserved = reservations): $([ "$broken" = 0 ] && echo PASS || echo FAIL)"
oversold=$(psql -X -At -c "SELECT count(*) FROM checkout.stock s
	WHERE NOT (0 <= s.reserved AND s.reserved <= s.on_hand)
	   OR s.on_hand + (SELECT COALESCE(sum(ll.quantity), 0) FROM checkout.lock_lines ll JOIN checkout.locks l USING (lock_id)
	                   WHERE l.state = 'completed' AND ll.sku = s.sku) <> $stock")
echo "never oversold (on_hand + sold = $stock): $([ "$oversold" = 0 ] && echo PASS || echo FAIL)"
verify=$(psql -X -At -c "SELECT count(*) FROM checkout_verify()")
echo "checkout_verify(): $verify row(s): $([ "$verify" = 0 ] && echo PASS || echo FAIL)"
psql -X -q -P pager=off -c "SELECT sku, on_hand, reserved, available, stripes FROM checkout.stock"
[ "$broken" = 0 ] && [ "$oversold" = 0 ] && [ "$verify" = 0 ]
