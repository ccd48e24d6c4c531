/*
 * stock.c — the only code that changes checkout.inventory.
 *
 * Locking protocol: every path that moves stock first locks the ledger rows
 * it needs in sku order (SELECT ... ORDER BY sku FOR NO KEY UPDATE), so two
 * carts sharing skus, or a cart and a sweep, can never deadlock; NO KEY keeps
 * the foreign-key checks of checkout.reservations from blocking.
 * Reservation checks availability on the locked rows, in C, before anything
 * is written, then moves all skus in one statement: all or nothing, and the
 * CHECK constraint (reserved <= on_hand) backs the check up, so stock cannot
 * be oversold.  Release and commit work on a set of locks with one ledger
 * update per sku: a sweep of thousands of locks on a hot sku touches its row
 * once.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"

#include "events.h"
#include "stock.h"
#include "util.h"

enum
{
	CS_LINE_ID, CS_SKU, CS_QUANTITY, CS_CART_PRICE, CS_AVAILABLE, CS_UNIT_PRICE, CS_LINES
};

void
stock_load_cart(int64 lock_id, CartStock *out)
{
	static Statement load = {
		.sql = "SELECT l.line_id, l.sku, l.quantity, l.cart_price, "
		"       i.on_hand - i.reserved AS available, i.unit_price, l.lines "
		"FROM (SELECT ll.line_no, ll.line_id, ll.sku, ll.quantity, ll.cart_price, "
		"             pg_catalog.count(*) OVER () AS lines "
		"      FROM checkout.lock_lines ll WHERE ll.lock_id = $1) l "
		"JOIN checkout.inventory i ON i.sku = l.sku "
		"ORDER BY i.sku, l.line_no FOR NO KEY UPDATE OF i",
		.nargs = 1,
		.argtypes = {INT8OID},
		.generic = true,
		.columns = {"line_id", "sku", "quantity", "cart_price", "available", "unit_price", "lines"},
	};
	Datum		values[1] = {Int64GetDatum(lock_id)};
	SPITupleTable *tt;
	int			n;
	int			i;

	n = stmt_exec(&load, values, NULL, false);
	tt = SPI_tuptable;
	out->n_found = n;
	out->n_lines = n > 0 ? (int) stmt_int8(&load, tt, 0, CS_LINES) : -1;
	out->line_ids = palloc(sizeof(char *) * Max(n, 1));
	out->skus = palloc(sizeof(char *) * Max(n, 1));
	out->quantities = palloc(sizeof(int64) * Max(n, 1));
	out->cart_prices = palloc(sizeof(int64) * Max(n, 1));
	out->available = palloc(sizeof(int64) * Max(n, 1));
	out->unit_prices = palloc(sizeof(int64) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		out->line_ids[i] = stmt_text(&load, tt, i, CS_LINE_ID);
		out->skus[i] = stmt_text(&load, tt, i, CS_SKU);
		out->quantities[i] = stmt_int8(&load, tt, i, CS_QUANTITY);
		out->cart_prices[i] = stmt_int8(&load, tt, i, CS_CART_PRICE);
		out->available[i] = stmt_int8(&load, tt, i, CS_AVAILABLE);
		out->unit_prices[i] = stmt_int8(&load, tt, i, CS_UNIT_PRICE);
	}
}

/* The first line (in cart order) whose sku is not in the inventory. */
bool
stock_first_unknown_line(int64 lock_id, char **line_id, char **sku)
{
	static Statement unknown = {
		.sql = "SELECT l.line_id, l.sku FROM checkout.lock_lines l "
		"WHERE l.lock_id = $1 AND NOT EXISTS "
		"  (SELECT 1 FROM checkout.inventory i WHERE i.sku = l.sku) "
		"ORDER BY l.line_no LIMIT 1",
		.nargs = 1,
		.argtypes = {INT8OID},
		.columns = {"line_id", "sku"},
	};
	Datum		values[1] = {Int64GetDatum(lock_id)};

	if (stmt_exec(&unknown, values, NULL, false) == 0)
		return false;
	*line_id = stmt_text(&unknown, SPI_tuptable, 0, 0);
	*sku = stmt_text(&unknown, SPI_tuptable, 0, 1);
	return true;
}

/*
 * Reserves the cart's summed quantity of each sku, or nothing: false with
 * the first shortfall (in sku order) when a sku has too little stock.  The
 * caller has loaded (and so locked) the cart's inventory rows.
 */
bool
stock_reserve(const LockRow *lock, const CartStock *cart, StockShortfall *shortfall)
{
	/*
	 * The rows are locked already (stock_load_cart).  The ledger update joins
	 * the reservations just inserted; `sku = ANY ($2)` lets the generic plan
	 * find the cart's rows through the primary key rather than scan the
	 * catalog.
	 */
	static Statement reserve = {
		.sql = "WITH held AS (INSERT INTO checkout.reservations (lock_id, sku, quantity) "
		"                   SELECT $1, t.sku, t.q "
		"                   FROM ROWS FROM (pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::int8[])) AS t(sku, q) "
		"                   RETURNING sku, quantity) "
		"UPDATE checkout.inventory i SET reserved = i.reserved + h.quantity "
		"FROM held h WHERE i.sku = h.sku AND i.sku = ANY ($2)",
		.nargs = 3,
		.argtypes = {INT8OID, TEXTARRAYOID, INT8ARRAYOID},
		.generic = true,
	};
	char	  **skus = palloc(sizeof(char *) * cart->n_found);
	int64	   *wanted = palloc(sizeof(int64) * cart->n_found);
	int64		units = 0;
	int			n = 0;
	int			i;
	Datum		values[3];

	/* lines come sorted by sku: sum each run (sums were checked at start) */
	for (i = 0; i < cart->n_found; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (n > 0 && strcmp(skus[n - 1], cart->skus[i]) == 0)
			wanted[n - 1] += cart->quantities[i];
		else
		{
			skus[n] = cart->skus[i];
			wanted[n] = cart->quantities[i];
			n++;
		}
		if (wanted[n - 1] > cart->available[i])
		{
			/* report the sku's whole want, not the running sum */
			int64		total = 0;
			int			j;

			for (j = 0; j < cart->n_found; j++)
				if (strcmp(cart->skus[j], cart->skus[i]) == 0)
					total += cart->quantities[j];
			shortfall->sku = cart->skus[i];
			shortfall->wanted = total;
			shortfall->available = cart->available[i];
			return false;
		}
	}
	for (i = 0; i < n; i++)
		units += wanted[i];

	values[0] = Int64GetDatum(lock->lock_id);
	values[1] = text_array(skus, n);
	values[2] = int8_array(wanted, n);
	stmt_exec(&reserve, values, NULL, false);

	if (event_wanted(EV_STOCK_RESERVED))
	{
		CheckoutEvent ev;

		event_begin(&ev, EV_STOCK_RESERVED, lock->lock_id, lock->cart_id);
		event_add_int(&ev, "skus", n);
		event_add_int(&ev, "units", units);
		event_emit(&ev);
	}
	return true;
}

enum
{
	MV_LOCK_ID, MV_SKU, MV_QUANTITY
};

/*
 * The statements of a move, for one lock (lock_id = $1: generic plans that
 * probe by key, the checkout's own path) or for a set (lock_id = ANY ($1):
 * planned per call, for the sizes of a sweep).
 */
#define LOCK_SQL(filter) \
	"SELECT i.sku FROM checkout.inventory i " \
	"WHERE i.sku IN (SELECT r.sku FROM checkout.reservations r WHERE " filter ") " \
	"ORDER BY i.sku FOR NO KEY UPDATE"
#define MOVE_SQL(filter, set_clause) \
	"WITH gone AS (DELETE FROM checkout.reservations r WHERE " filter " " \
	"              RETURNING r.lock_id, r.sku, r.quantity), " \
	"per_sku AS (SELECT sku, pg_catalog.sum(quantity)::bigint AS q FROM gone GROUP BY sku), " \
	"moved AS (UPDATE checkout.inventory i SET " set_clause " FROM per_sku p WHERE i.sku = p.sku) " \
	"SELECT lock_id, sku, quantity FROM gone ORDER BY lock_id, sku"
#define ONE "r.lock_id = $1"
#define SET "r.lock_id = ANY ($1)"
#define RELEASE "reserved = i.reserved - p.q"
#define SELL "on_hand = i.on_hand - p.q, reserved = i.reserved - p.q"
#define MOVE_STATEMENT(sql_text, argtype, is_generic) \
	{.sql = sql_text, .nargs = 1, .argtypes = {argtype}, .generic = is_generic, \
	 .columns = {"lock_id", "sku", "quantity"}}

/*
 * [set?]  For one lock: its reservations in sku order (the primary key's
 * order), each inventory row locked as it comes, by key: a join the planner
 * could turn into a merge over the whole catalog's index is not offered.
 */
static Statement lock_stmts[2] = {
	{.sql = "SELECT x.sku FROM (SELECT r.sku FROM checkout.reservations r WHERE r.lock_id = $1 "
		"                       ORDER BY r.sku) r, "
		"LATERAL (SELECT i.sku FROM checkout.inventory i WHERE i.sku = r.sku FOR NO KEY UPDATE) x",
	 .nargs = 1, .argtypes = {INT8OID}, .generic = true},
	{.sql = LOCK_SQL(SET), .nargs = 1, .argtypes = {INT8ARRAYOID}},
};
/* [set?][sell?] */
static Statement move_stmts[2][2] = {
	{MOVE_STATEMENT(MOVE_SQL(ONE, RELEASE), INT8OID, true),
	 MOVE_STATEMENT(MOVE_SQL(ONE, SELL), INT8OID, true)},
	{MOVE_STATEMENT(MOVE_SQL(SET, RELEASE), INT8ARRAYOID, false),
	 MOVE_STATEMENT(MOVE_SQL(SET, SELL), INT8ARRAYOID, false)},
};

/*
 * Releases (sell = false) or sells (sell = true) everything the locks hold.
 * Emits, per lock, "stock released"/"stock committed" and, for a release,
 * the rollback step.
 */
static void
move_held_stock(LockRow *const *locks, int n_locks, bool sell)
{
	bool		set = n_locks > 1;
	Statement  *move = &move_stmts[set][sell];
	EventKind	stock_event = sell ? EV_STOCK_COMMITTED : EV_STOCK_RELEASED;
	LockRow   **by_id;
	Datum		values[1];
	SPITupleTable *tt;
	int			n;
	int			i;

	values[0] = set ? lock_id_array(locks, n_locks) : Int64GetDatum(locks[0]->lock_id);
	stmt_exec(&lock_stmts[set], values, NULL, false);
	n = stmt_exec(move, values, NULL, false);
	tt = SPI_tuptable;

	if (n == 0 || !(event_wanted(stock_event) || (!sell && event_wanted(EV_ROLLBACK_STEP))))
		return;

	by_id = locks_sorted_by_id(locks, n_locks);
	for (i = 0; i < n;)
	{
		int64		lock_id = stmt_int8(move, tt, i, MV_LOCK_ID);
		LockRow    *lock = locks_find(by_id, n_locks, lock_id);
		const char *cart_id = lock ? lock->cart_id : NULL;
		StringInfoData items;
		int64		units = 0;
		CheckoutEvent ev;

		initStringInfo(&items);
		appendStringInfoChar(&items, '[');
		for (; i < n && stmt_int8(move, tt, i, MV_LOCK_ID) == lock_id; i++)
		{
			int64		q = stmt_int8(move, tt, i, MV_QUANTITY);

			CHECK_FOR_INTERRUPTS();
			if (items.len > 1)
				appendStringInfoChar(&items, ',');
			appendStringInfoString(&items, "{\"sku\":");
			escape_json(&items, stmt_text(move, tt, i, MV_SKU));
			appendStringInfo(&items, ",\"quantity\":" INT64_FORMAT "}", q);
			units += q;
		}
		appendStringInfoChar(&items, ']');

		if (!sell && event_wanted(EV_ROLLBACK_STEP))
		{
			event_begin(&ev, EV_ROLLBACK_STEP, lock_id, cart_id);
			event_add_text(&ev, "step", "release_reservations");
			event_add_int(&ev, "units", units);
			event_emit(&ev);
		}
		if (event_wanted(stock_event))
		{
			event_begin(&ev, stock_event, lock_id, cart_id);
			event_add_int(&ev, "units", units);
			event_add_raw(&ev, "items", items.data);
			event_emit(&ev);
		}
	}
}

/*
 * Locks, in sku order, the inventory rows of everything the locks hold.  A
 * caller that will sell the stock of some and release that of others in one
 * transaction calls this first, so that it takes the rows in the one order
 * every checkout takes them in, not in sku order twice over.
 */
void
stock_lock_held(LockRow *const *locks, int n)
{
	Datum		values[1];

	values[0] = n > 1 ? lock_id_array(locks, n) : Int64GetDatum(locks[0]->lock_id);
	stmt_exec(&lock_stmts[n > 1], values, NULL, false);
}

void
stock_release(LockRow *const *locks, int n)
{
	move_held_stock(locks, n, false);
}

void
stock_commit(LockRow *const *locks, int n)
{
	move_held_stock(locks, n, true);
}
