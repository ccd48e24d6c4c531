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
	CS_LINE_ID, CS_SKU, CS_QUANTITY, CS_CART_PRICE, CS_AVAILABLE, CS_UNIT_PRICE, CS_TID, CS_LINES
};

/*
 * Locking an inventory row inside LATERAL, by key, keeps every plan of these
 * statements an index probe per line: a generic plan made while the catalog
 * was small would otherwise join it by a sequential scan, for every call.
 * The locked row's ctid then lets the ledger update reach it directly (a row
 * this transaction has locked cannot move under it).
 */
void
stock_load_cart(int64 lock_id, CartStock *out)
{
	static Statement load = {
		.sql = "SELECT l.line_id, l.sku, l.quantity, l.cart_price, i.available, i.unit_price, "
		"       i.ctid AS tid, l.lines "
		"FROM (SELECT ll.line_no, ll.line_id, ll.sku, ll.quantity, ll.cart_price, "
		"             pg_catalog.count(*) OVER () AS lines "
		"      FROM checkout.lock_lines ll WHERE ll.lock_id = $1 ORDER BY ll.sku, ll.line_no) l, "
		"LATERAL (SELECT i.on_hand - i.reserved AS available, i.unit_price, i.ctid "
		"         FROM checkout.inventory i WHERE i.sku = l.sku FOR NO KEY UPDATE) i",
		.nargs = 1,
		.argtypes = {INT8OID},
		.generic = true,
		.columns = {"line_id", "sku", "quantity", "cart_price", "available", "unit_price", "tid", "lines"},
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
	out->tids = palloc(sizeof(ItemPointerData) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		out->line_ids[i] = stmt_text(&load, tt, i, CS_LINE_ID);
		out->skus[i] = stmt_text(&load, tt, i, CS_SKU);
		out->quantities[i] = stmt_int8(&load, tt, i, CS_QUANTITY);
		out->cart_prices[i] = stmt_int8(&load, tt, i, CS_CART_PRICE);
		out->available[i] = stmt_int8(&load, tt, i, CS_AVAILABLE);
		out->unit_prices[i] = stmt_int8(&load, tt, i, CS_UNIT_PRICE);
		ItemPointerCopy((ItemPointer) DatumGetPointer(stmt_datum(&load, tt, i, CS_TID, &isnull)), &out->tids[i]);
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
 * A ledger update by ctid reached no row: the row this transaction locked is
 * not where it was.  That cannot happen while the row lock holds; should it,
 * the transaction must not commit a reservation without its ledger change.
 */
static void
ledger_row_moved(const char *sku)
{
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("checkout: the inventory row of sku %s moved under its row lock", quote_user_text(sku))));
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
	 * The rows are locked already (stock_load_cart) and reached by their
	 * ctids: a statement per sku, whose plan cannot be a scan of the catalog.
	 */
	static Statement reserve = {
		.sql = "WITH held AS (INSERT INTO checkout.reservations (lock_id, sku, quantity) "
		"              VALUES ($1, $2, $3)) "
		"UPDATE checkout.inventory SET reserved = reserved + $3 WHERE ctid = $4",
		.nargs = 4,
		.argtypes = {INT8OID, TEXTOID, INT8OID, TIDOID},
		.generic = true,
	};
	char	  **skus = palloc(sizeof(char *) * cart->n_found);
	int64	   *wanted = palloc(sizeof(int64) * cart->n_found);
	ItemPointerData *tids = palloc(sizeof(ItemPointerData) * Max(cart->n_found, 1));
	int64		units = 0;
	int			n = 0;
	int			i;
	Datum		values[4];

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
			tids[n] = cart->tids[i];
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
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		values[1] = CStringGetTextDatum(skus[i]);
		values[2] = Int64GetDatum(wanted[i]);
		values[3] = PointerGetDatum(&tids[i]);
		if (stmt_exec(&reserve, values, NULL, false) != 1)
			ledger_row_moved(skus[i]);
	}

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
	MV_LOCK_ID, MV_SKU, MV_QUANTITY, MV_TID
};

/*
 * One lock (the checkout's own path): its reservations in sku order (the
 * primary key's order), each inventory row locked as it comes, by key (see
 * stock_load_cart); then, per sku, the reservation deleted and the ledger
 * row, reached by its ctid, updated.  Every plan is a probe by key.
 */
static Statement lock_one = {
	.sql = "SELECT $1::bigint AS lock_id, r.sku, r.quantity, x.tid "
	"FROM (SELECT r.sku, r.quantity FROM checkout.reservations r WHERE r.lock_id = $1 "
	"      ORDER BY r.sku) r, "
	"LATERAL (SELECT i.ctid AS tid FROM checkout.inventory i WHERE i.sku = r.sku FOR NO KEY UPDATE) x",
	.nargs = 1, .argtypes = {INT8OID}, .generic = true,
	.columns = {"lock_id", "sku", "quantity", "tid"},
};

#define MOVE_ONE_SQL(set_clause) \
	"WITH gone AS (DELETE FROM checkout.reservations WHERE lock_id = $1 AND sku = $2) " \
	"UPDATE checkout.inventory SET " set_clause " WHERE ctid = $4"
/* [sell?] */
static Statement move_one[2] = {
	{.sql = MOVE_ONE_SQL("reserved = reserved - $3"), .nargs = 4,
	 .argtypes = {INT8OID, TEXTOID, INT8OID, TIDOID}, .generic = true},
	{.sql = MOVE_ONE_SQL("on_hand = on_hand - $3, reserved = reserved - $3"), .nargs = 4,
	 .argtypes = {INT8OID, TEXTOID, INT8OID, TIDOID}, .generic = true},
};

/*
 * A set of locks (a sweep): planned per call, for its sizes.  The inventory
 * rows are locked in sku order first, then one statement moves them all.
 */
static Statement lock_set = {
	.sql = "SELECT i.sku FROM checkout.inventory i "
	"WHERE i.sku IN (SELECT r.sku FROM checkout.reservations r WHERE r.lock_id = ANY ($1)) "
	"ORDER BY i.sku FOR NO KEY UPDATE",
	.nargs = 1, .argtypes = {INT8ARRAYOID},
};

#define MOVE_SET_SQL(set_clause) \
	"WITH gone AS (DELETE FROM checkout.reservations r WHERE r.lock_id = ANY ($1) " \
	"              RETURNING r.lock_id, r.sku, r.quantity), " \
	"per_sku AS (SELECT sku, pg_catalog.sum(quantity)::bigint AS q FROM gone GROUP BY sku), " \
	"moved AS (UPDATE checkout.inventory i SET " set_clause " FROM per_sku p WHERE i.sku = p.sku) " \
	"SELECT lock_id, sku, quantity FROM gone ORDER BY lock_id, sku"
/* [sell?] */
static Statement move_set[2] = {
	{.sql = MOVE_SET_SQL("reserved = i.reserved - p.q"), .nargs = 1, .argtypes = {INT8ARRAYOID},
	 .columns = {"lock_id", "sku", "quantity"}},
	{.sql = MOVE_SET_SQL("on_hand = i.on_hand - p.q, reserved = i.reserved - p.q"), .nargs = 1,
	 .argtypes = {INT8ARRAYOID}, .columns = {"lock_id", "sku", "quantity"}},
};

/*
 * Releases (sell = false) or sells (sell = true) everything the locks hold.
 * Emits, per lock, "stock released"/"stock committed" and, for a release,
 * the rollback step.
 */
static void
move_held_stock(LockRow *const *locks, int n_locks, bool sell)
{
	EventKind	stock_event = sell ? EV_STOCK_COMMITTED : EV_STOCK_RELEASED;
	Statement  *moved;			/* its rows: lock_id, sku, quantity */
	LockRow   **by_id;
	SPITupleTable *tt;
	int			n;
	int			i;

	if (n_locks == 1)
	{
		Datum		values[4];

		values[0] = Int64GetDatum(locks[0]->lock_id);
		n = stmt_exec(&lock_one, values, NULL, false);
		tt = SPI_tuptable;
		for (i = 0; i < n; i++)
		{
			bool		isnull;

			CHECK_FOR_INTERRUPTS();
			values[1] = stmt_datum(&lock_one, tt, i, MV_SKU, &isnull);
			values[2] = stmt_datum(&lock_one, tt, i, MV_QUANTITY, &isnull);
			values[3] = stmt_datum(&lock_one, tt, i, MV_TID, &isnull);
			if (stmt_exec(&move_one[sell], values, NULL, false) != 1)
				ledger_row_moved(stmt_text(&lock_one, tt, i, MV_SKU));
		}
		moved = &lock_one;
	}
	else
	{
		Datum		values[1] = {lock_id_array(locks, n_locks)};

		stmt_exec(&lock_set, values, NULL, false);
		n = stmt_exec(&move_set[sell], values, NULL, false);
		tt = SPI_tuptable;
		moved = &move_set[sell];
	}

	if (n == 0 || !(event_wanted(stock_event) || (!sell && event_wanted(EV_ROLLBACK_STEP))))
		return;

	by_id = locks_sorted_by_id(locks, n_locks);
	for (i = 0; i < n;)
	{
		int64		lock_id = stmt_int8(moved, tt, i, MV_LOCK_ID);
		LockRow    *lock = locks_find(by_id, n_locks, lock_id);
		const char *cart_id = lock ? lock->cart_id : NULL;
		StringInfoData items;
		int64		units = 0;
		CheckoutEvent ev;

		initStringInfo(&items);
		appendStringInfoChar(&items, '[');
		for (; i < n && stmt_int8(moved, tt, i, MV_LOCK_ID) == lock_id; i++)
		{
			int64		q = stmt_int8(moved, tt, i, MV_QUANTITY);

			CHECK_FOR_INTERRUPTS();
			if (items.len > 1)
				appendStringInfoChar(&items, ',');
			appendStringInfoString(&items, "{\"sku\":");
			escape_json(&items, stmt_text(moved, tt, i, MV_SKU));
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
	Datum		values[1] = {lock_id_array(locks, n)};

	stmt_exec(&lock_set, values, NULL, false);
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
