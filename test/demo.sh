#!/usr/bin/env bash
# make demo: install what is missing, build and install the extension, start a
# throwaway cluster and walk through an example checkout in psql, step by step:
# a full checkout, a cart that fails on insufficient stock, a second session
# bumping into a locked cart (KC001), a cancel with rollback, and the
# [checkout] lines the server log got.  Stops and removes the cluster at the end.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ensure_packages
build_install
# every event category, so the log at the end shows each phase and stock move
start_cluster "checkout.log_events = 'all'"

STATUS_COLS="lock_id, cart_id, state, phase, total, order_ref, failed_phase, error_code, error_message"

heading() {
	printf '\n================================================================\n'
	printf '== %s\n' "$*"
	printf '================================================================\n'
}
say() { printf '%s\n' "$*"; }

# sql: run a script in psql, echoing each statement before its result
sql() {
	"$PG_BINDIR/psql" -X -q -e -P pager=off -v ON_ERROR_STOP=1 "$@"
}
# value: one value, unaligned
value() {
	"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"
}
# expect: fail the demo when a result is not what the narration says
expect() {	# expect WHAT GOT WANT
	if [ "$2" != "$3" ]; then
		echo "UNEXPECTED: $1: got '$2', expected '$3'" >&2
		exit 1
	fi
}

heading "1. Install the extension"
sql <<'SQL'
CREATE EXTENSION checkout;
SQL
say "Roles checkout_app (the application) and checkout_admin (the catalog, admin) now exist."

heading "2. The catalog side loads stock and prices (plain SQL as checkout_admin)"
sql <<'SQL'
SET ROLE checkout_admin;
INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES
  ('A-1', 10, 1000),
  ('B-2',  5,  250),
  ('C-3',  2, 4000);
RESET ROLE;
SELECT * FROM checkout.inventory ORDER BY sku;
SQL

heading "3. A full checkout of cart-1 by session sess-1 (as checkout_app)"
say "-- start: takes the cart's lock; nothing is reserved yet"
sql <<SQL
SET ROLE checkout_app;
SELECT $STATUS_COLS, expires_at FROM checkout_start('cart-1', 'sess-1',
  '[{"line_id":"1","sku":"A-1","quantity":2,"unit_price":1000},
    {"line_id":"2","sku":"B-2","quantity":1,"unit_price":250}]');
SQL
LOCK1=$(value "SELECT lock_id FROM checkout.locks WHERE cart_id = 'cart-1' AND session_id = 'sess-1'")

say "-- advance until price_lock: cart validated, stock reserved, prices locked, total known"
sql <<SQL
SET ROLE checkout_app;
SELECT $STATUS_COLS FROM checkout_advance($LOCK1, 'sess-1', until => 'price_lock');
SELECT * FROM checkout.inventory ORDER BY sku;
SQL
TOTAL=$(value "SELECT total FROM checkout_status($LOCK1, 'sess-1')")
expect "total of cart-1" "$TOTAL" 2250

say "-- payment_authorization: the gateway authorised exactly the locked total"
sql <<SQL
SET ROLE checkout_app;
SELECT $STATUS_COLS FROM checkout_advance($LOCK1, 'sess-1', '{"reference":"auth_123","amount":$TOTAL}');
SQL

say "-- order_creation: the extension creates the order (order_ref CO-<lock_id>)"
sql <<SQL
SET ROLE checkout_app;
SELECT $STATUS_COLS FROM checkout_advance($LOCK1, 'sess-1');
SQL

say "-- payment_capture: the captured amount must equal the authorised one"
sql <<SQL
SET ROLE checkout_app;
SELECT $STATUS_COLS FROM checkout_advance($LOCK1, 'sess-1', '{"reference":"cap_123","amount":$TOTAL}');
SQL

say "-- stock_commit: reservations become sales, the lock completes, the cart is free again"
sql <<SQL
SET ROLE checkout_app;
SELECT $STATUS_COLS FROM checkout_advance($LOCK1, 'sess-1');
SQL
expect "state of cart-1" "$(value "SELECT state FROM checkout_status($LOCK1, 'sess-1')")" completed

say "-- inventory after: A-1 10 -> 8, B-2 5 -> 4, nothing left reserved"
sql <<'SQL'
SELECT * FROM checkout.inventory ORDER BY sku;
SQL
expect "A-1 after the sale" "$(value "SELECT on_hand || '/' || reserved FROM checkout.inventory WHERE sku = 'A-1'")" 8/0

heading "4. cart-2 wants more C-3 than there is: the failure is returned, not raised"
sql <<SQL
SET ROLE checkout_app;
SELECT lock_id FROM checkout_start('cart-2', 'sess-2',
  '[{"line_id":"1","sku":"A-1","quantity":1,"unit_price":1000},
    {"line_id":"2","sku":"C-3","quantity":5,"unit_price":4000}]');
SQL
LOCK2=$(value "SELECT lock_id FROM checkout.locks WHERE cart_id = 'cart-2' AND session_id = 'sess-2'")
sql <<SQL
SET ROLE checkout_app;
SELECT $STATUS_COLS FROM checkout_advance($LOCK2, 'sess-2', until => 'price_lock');
SQL
expect "cart-2's outcome" "$(value "SELECT state || ' ' || failed_phase || ' ' || error_code FROM checkout_status($LOCK2, 'sess-2')")" \
	"failed inventory_reservation KC011"
say "-- nothing was partially reserved (A-1 was fine, but the reservation is all or nothing)"
sql <<'SQL'
SELECT * FROM checkout.inventory ORDER BY sku;
SQL

heading "5. A cart another session holds: KC001"
sql <<SQL
SET ROLE checkout_app;
SELECT lock_id FROM checkout_start('cart-3', 'sess-3',
  '[{"line_id":"1","sku":"B-2","quantity":3,"unit_price":250}]');
SQL
LOCK3=$(value "SELECT lock_id FROM checkout.locks WHERE cart_id = 'cart-3' AND session_id = 'sess-3'")
sql <<SQL
SET ROLE checkout_app;
SELECT $STATUS_COLS FROM checkout_advance($LOCK3, 'sess-3', until => 'price_lock');
SELECT $STATUS_COLS FROM checkout_advance($LOCK3, 'sess-3', '{"reference":"auth_456","amount":750}');
SQL
say "-- sess-4 (another tab, another device) tries to check out the same cart:"
out=$("$PG_BINDIR/psql" -X -q -e -P pager=off 2>&1 <<'SQL' || true
\set VERBOSITY verbose
SET ROLE checkout_app;
SELECT * FROM checkout_start('cart-3', 'sess-4', '[{"line_id":"1","sku":"B-2","quantity":1,"unit_price":250}]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SQL
)
printf '%s\n' "$out"
case $out in
*"SQLSTATE KC001"*) ;;
*) echo "UNEXPECTED: the second session did not get KC001" >&2; exit 1 ;;
esac

heading "6. sess-3 cancels: completed phases are rolled back in reverse order"
sql <<SQL
SET ROLE checkout_app;
SELECT $STATUS_COLS FROM checkout_cancel($LOCK3, 'sess-3');
SQL
say "-- the authorisation must be voided at the gateway: a compensation to act on"
sql <<SQL
SELECT * FROM checkout.compensations WHERE lock_id = $LOCK3;
SQL
say "-- B-2's reservation of 3 is released"
sql <<'SQL'
SELECT * FROM checkout.inventory ORDER BY sku;
SQL
expect "state of cart-3" "$(value "SELECT state FROM checkout_status($LOCK3, 'sess-3')")" cancelled
expect "B-2 after the cancel" "$(value "SELECT on_hand || '/' || reserved FROM checkout.inventory WHERE sku = 'B-2'")" 4/0

heading "7. All the locks, and the ledger check"
sql <<'SQL'
SELECT lock_id, cart_id, session_id, state, phase, total, order_ref, failed_phase, error_code
  FROM checkout.locks ORDER BY lock_id;
SELECT * FROM checkout_verify();
SQL

heading "8. What the server log got ([checkout] lines)"
cluster_log | grep -F '[checkout]' | sed -E 's/^.*LOG:  //' | tail -n 40 || {
	echo "UNEXPECTED: no [checkout] line in the server log" >&2; exit 1; }

heading "Done"
say "The cluster is stopped and removed now."
