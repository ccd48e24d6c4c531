/*
 * stock.c — the only code that changes checkout.inventory.
 *
 * Locking protocol: every path that moves stock first locks the ledger rows
 * it needs in sku order (FOR NO KEY UPDATE: by key in C for one lock, SELECT
 * ... ORDER BY sku for a set), so two carts sharing skus, or a cart and a
 * sweep, can never deadlock; NO KEY keeps the foreign-key checks of
 * checkout.reservations from blocking.  Reservation checks availability on
 * the locked rows, in C, before anything is written, then writes every sku:
 * all or nothing, and the CHECK constraint (reserved <= on_hand) backs the
 * check up, so stock cannot be oversold.  A late reservation decides from
 * rows read and checks the decision again on the rows once locked
 * (stock_lock_late), so it, too, writes only what the locked rows allow.
 * Release and commit work on a set of locks with one ledger update per sku:
 * a sweep of thousands of locks on a hot sku touches its row once.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/rel.h"
#include "utils/varlena.h"

#include "events.h"
#include "rowwrite.h"
#include "stock.h"
#include "util.h"

/* sku order: the column's collation, as every ORDER BY sku of the other paths */
static int
sku_cmp(const char *a, const char *b)
{
	return varstr_cmp(a, strlen(a), b, strlen(b), DEFAULT_COLLATION_OID);
}

/* checkout.inventory open for locking its rows, its columns looked up once */
typedef struct Ledger
{
	KeyAccess	ka;
	int			sku;
	int			on_hand;
	int			reserved;
	int			unit_price;
} Ledger;

static void
ledger_open(Ledger *ledger)
{
	key_open(&ledger->ka, "inventory", RowShareLock);
	ledger->sku = key_attnum(&ledger->ka, "sku");
	ledger->on_hand = key_attnum(&ledger->ka, "on_hand");
	ledger->reserved = key_attnum(&ledger->ka, "reserved");
	ledger->unit_price = key_attnum(&ledger->ka, "unit_price");
}

/* An inventory row as locked: its latest version. */
typedef struct LedgerRow
{
	int64		on_hand;
	int64		reserved;
	int64		unit_price;
	ItemPointerData tid;		/* of the locked version */
} LedgerRow;

/* A ledger row's values from a version of it; false when it is not the sku's. */
static bool
ledger_row_of(Ledger *ledger, HeapTuple tuple, const char *sku, LedgerRow *out)
{
	Datum	   *columns = key_deform(&ledger->ka, tuple);

	if (strcmp(TextDatumGetCString(columns[ledger->sku - 1]), sku) != 0)
		return false;
	out->on_hand = DatumGetInt64(columns[ledger->on_hand - 1]);
	out->reserved = DatumGetInt64(columns[ledger->reserved - 1]);
	out->unit_price = DatumGetInt64(columns[ledger->unit_price - 1]);
	out->tid = tuple->t_self;
	return true;
}

/*
 * The sku's inventory row, found by key and locked FOR NO KEY UPDATE (its
 * latest version); false when the sku is not in the inventory.
 */
static bool
lock_ledger_row(Ledger *ledger, const char *sku, LedgerRow *out)
{
	bool		should_free;

	if (!key_find(&ledger->ka, ledger->sku, F_TEXTEQ, CStringGetTextDatum(sku)) ||
		!key_lock(&ledger->ka, LockTupleNoKeyExclusive))
		return false;
	/* the version locked may be newer than the one found: still this sku? */
	return ledger_row_of(ledger, ExecFetchSlotHeapTuple(ledger->ka.slot, false, &should_free),
						 sku, out);
}

/*
 * The sku's inventory row as the statement's snapshot sees it, not locked:
 * what a late reservation predicts from (stock_lock_late checks it under
 * the lock).
 */
static bool
read_ledger_row(Ledger *ledger, const char *sku, LedgerRow *out)
{
	return key_find(&ledger->ka, ledger->sku, F_TEXTEQ, CStringGetTextDatum(sku)) &&
		ledger_row_of(ledger, ledger->ka.found, sku, out);
}

typedef struct CartLine
{
	int32		line_no;
	char	   *line_id;
	char	   *sku;
	int64		quantity;
	int64		cart_price;
} CartLine;

static int
cmp_cart_line(const void *a, const void *b)
{
	const CartLine *x = (const CartLine *) a;
	const CartLine *y = (const CartLine *) b;
	int			c = sku_cmp(x->sku, y->sku);

	return c != 0 ? c : (x->line_no > y->line_no) - (x->line_no < y->line_no);
}

/*
 * The lock's lines in sku order, each with its sku's inventory row locked
 * as it comes (so in sku order, like every path that moves stock), or only
 * read when !lock_rows (a late reservation locks them last).  Read
 * through the primary keys without the executor: planned statements cost
 * more than the probes themselves, and a generic plan made while the
 * catalog was small would join the inventory by a sequential scan.  The
 * locked row's ctid lets the ledger update reach it directly (a row this
 * transaction has locked cannot move under it).
 */
void
stock_load_cart(int64 lock_id, CartStock *out, bool lock_rows)
{
	KeyAccess	ka;
	CartLine   *lines = palloc(sizeof(CartLine) * 8);
	int			cap = 8;
	int			n = 0;
	int			i;
	Ledger		ledger;
	LedgerRow	row;
	bool		have_row = false;

	key_open(&ka, "lock_lines", AccessShareLock);
	{
		int			a_lock_id = key_attnum(&ka, "lock_id");
		int			a_line_no = key_attnum(&ka, "line_no");
		int			a_line_id = key_attnum(&ka, "line_id");
		int			a_sku = key_attnum(&ka, "sku");
		int			a_quantity = key_attnum(&ka, "quantity");
		int			a_cart_price = key_attnum(&ka, "cart_price");

		key_scan(&ka, a_lock_id, F_INT8EQ, Int64GetDatum(lock_id));
		while (key_next(&ka))
		{
			Datum	   *columns;

			CHECK_FOR_INTERRUPTS();
			if (n == cap)
			{
				cap *= 2;
				lines = repalloc(lines, sizeof(CartLine) * cap);
			}
			columns = key_deform(&ka, ka.found);
			lines[n].line_no = DatumGetInt32(columns[a_line_no - 1]);
			lines[n].line_id = TextDatumGetCString(columns[a_line_id - 1]);
			lines[n].sku = TextDatumGetCString(columns[a_sku - 1]);
			lines[n].quantity = DatumGetInt64(columns[a_quantity - 1]);
			lines[n].cart_price = DatumGetInt64(columns[a_cart_price - 1]);
			n++;
		}
		key_scan_end(&ka);
	}
	key_close(&ka);
	qsort(lines, n, sizeof(CartLine), cmp_cart_line);

	out->n_lines = n;
	out->n_found = 0;
	out->line_ids = palloc(sizeof(char *) * Max(n, 1));
	out->skus = palloc(sizeof(char *) * Max(n, 1));
	out->quantities = palloc(sizeof(int64) * Max(n, 1));
	out->cart_prices = palloc(sizeof(int64) * Max(n, 1));
	out->available = palloc(sizeof(int64) * Max(n, 1));
	out->unit_prices = palloc(sizeof(int64) * Max(n, 1));
	out->tids = palloc(sizeof(ItemPointerData) * Max(n, 1));

	ledger_open(&ledger);
	for (i = 0; i < n; i++)
	{
		int			f = out->n_found;

		CHECK_FOR_INTERRUPTS();
		/* a sku's row is locked once, for its first line */
		if (i == 0 || strcmp(lines[i].sku, lines[i - 1].sku) != 0)
			have_row = lock_rows ? lock_ledger_row(&ledger, lines[i].sku, &row)
				: read_ledger_row(&ledger, lines[i].sku, &row);
		if (!have_row)
			continue;			/* not in the inventory: not found */
		out->line_ids[f] = lines[i].line_id;
		out->skus[f] = lines[i].sku;
		out->quantities[f] = lines[i].quantity;
		out->cart_prices[f] = lines[i].cart_price;
		out->available[f] = row.on_hand - row.reserved;
		out->unit_prices[f] = row.unit_price;
		out->tids[f] = row.tid;
		out->n_found++;
	}
	key_close(&ledger.ka);
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
 * Row writes (rowwrite.c) of the reservations and the ledger; false, with
 * neither begun, when either table runs code a user added.
 */
static bool
stock_writes_begin(RowWrite *held, RowWrite *ledger)
{
	if (!row_write_begin(held, "reservations"))
		return false;
	if (!row_write_begin(ledger, "inventory"))
	{
		row_write_end(held);
		return false;
	}
	return true;
}

static void
stock_writes_end(RowWrite *held, RowWrite *ledger)
{
	row_write_end(ledger);
	row_write_end(held);
}

/*
 * The reservation's rows and ledger changes written without statements
 * (rowwrite.c); false, with nothing written, when either table runs code a
 * user added.
 */
static bool
write_reservation_direct(int64 lock_id, const StockReservation *res)
{
	RowWrite	held;
	RowWrite	ledger;
	int			held_columns[3];
	int			reserved;
	int			i;

	if (!stock_writes_begin(&held, &ledger))
		return false;
	held_columns[0] = row_attnum(&held, "lock_id");
	held_columns[1] = row_attnum(&held, "sku");
	held_columns[2] = row_attnum(&held, "quantity");
	reserved = row_attnum(&ledger, "reserved");
	for (i = 0; i < res->n; i++)
	{
		Datum		values[3];
		bool		isnull[3] = {false, false, false};
		ItemPointerData tid = res->tids[i];

		CHECK_FOR_INTERRUPTS();
		values[0] = Int64GetDatum(lock_id);
		values[1] = CStringGetTextDatum(res->skus[i]);
		values[2] = Int64GetDatum(res->wanted[i]);
		row_insert(&held, held_columns, values, isnull, 3);
		row_add(&ledger, &tid, &reserved, &res->wanted[i], 1);
	}
	stock_writes_end(&held, &ledger);
	return true;
}

/* The ledger update of a reservation: the rows are locked and reached by their ctids. */
void
stock_write_reservation(int64 lock_id, const StockReservation *res)
{
	/* a statement per sku, whose plan cannot be a scan of the catalog */
	static Statement reserve = {
		.sql = "WITH held AS (INSERT INTO checkout.reservations (lock_id, sku, quantity) "
		"              VALUES ($1, $2, $3)) "
		"UPDATE checkout.inventory SET reserved = reserved + $3 WHERE ctid = $4",
		.nargs = 4,
		.argtypes = {INT8OID, TEXTOID, INT8OID, TIDOID},
		.generic = true,
	};
	Datum		values[4];
	int			i;

	if (write_reservation_direct(lock_id, res))
		return;
	values[0] = Int64GetDatum(lock_id);
	for (i = 0; i < res->n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		values[1] = CStringGetTextDatum(res->skus[i]);
		values[2] = Int64GetDatum(res->wanted[i]);
		values[3] = PointerGetDatum(&res->tids[i]);
		if (stmt_exec(&reserve, values, NULL, false) != 1)
			ledger_row_moved(res->skus[i]);
	}
}

/*
 * Reserves the cart's summed quantity of each sku, or nothing: false with
 * the first shortfall (in sku order) when a sku has too little stock.  The
 * caller has loaded (and so locked) the cart's inventory rows.  With `late`
 * the cart was only read: the reservation is decided and returned there,
 * for stock_lock_late to check and stock_write_reservation to write.
 */
bool
stock_reserve(const LockRow *lock, const CartStock *cart, StockShortfall *shortfall,
			  StockReservation *late)
{
	StockReservation res;
	int64		units = 0;
	int			i;

	res.skus = palloc(sizeof(char *) * Max(cart->n_found, 1));
	res.wanted = palloc(sizeof(int64) * Max(cart->n_found, 1));
	res.unit_prices = palloc(sizeof(int64) * Max(cart->n_found, 1));
	res.tids = palloc(sizeof(ItemPointerData) * Max(cart->n_found, 1));
	res.n = 0;

	/* lines come sorted by sku: sum each run (sums were checked at start) */
	for (i = 0; i < cart->n_found; i++)
	{
		int			n = res.n;

		CHECK_FOR_INTERRUPTS();
		if (n > 0 && strcmp(res.skus[n - 1], cart->skus[i]) == 0)
			res.wanted[n - 1] += cart->quantities[i];
		else
		{
			res.skus[n] = cart->skus[i];
			res.wanted[n] = cart->quantities[i];
			res.unit_prices[n] = cart->unit_prices[i];
			res.tids[n] = cart->tids[i];
			res.n = ++n;
		}
		if (res.wanted[n - 1] > cart->available[i])
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
	for (i = 0; i < res.n; i++)
		units += res.wanted[i];

	if (late)
		*late = res;
	else
		stock_write_reservation(lock->lock_id, &res);

	if (event_wanted(EV_STOCK_RESERVED))
	{
		CheckoutEvent ev;

		event_begin(&ev, EV_STOCK_RESERVED, lock->lock_id, lock->cart_id);
		event_add_int(&ev, "skus", res.n);
		event_add_int(&ev, "units", units);
		event_emit(&ev);
	}
	return true;
}

/*
 * Locks, in sku order, the rows of a reservation stock_reserve decided from
 * rows it only read, and checks that each still has the stock and the price
 * it was decided on: then stock_write_reservation may write it.  False when
 * one changed: nothing is written, and the caller decides again with the
 * rows locked.
 */
bool
stock_lock_late(StockReservation *res)
{
	Ledger		ledger;
	LedgerRow	row;
	bool		unchanged = true;
	int			i;

	ledger_open(&ledger);
	for (i = 0; i < res->n && unchanged; i++)
	{
		CHECK_FOR_INTERRUPTS();
		unchanged = lock_ledger_row(&ledger, res->skus[i], &row) &&
			row.on_hand - row.reserved >= res->wanted[i] &&
			row.unit_price == res->unit_prices[i];
		if (unchanged)
			res->tids[i] = row.tid;
	}
	key_close(&ledger.ka);
	return unchanged;
}

enum
{
	MV_LOCK_ID, MV_SKU, MV_QUANTITY
};

/* What moved: per row, a lock's sku and quantity, rows of a lock together. */
typedef struct MovedStock
{
	int			n;
	int64	   *lock_ids;
	char	  **skus;
	int64	   *quantities;
} MovedStock;

static void
moved_alloc(MovedStock *m, int n)
{
	m->n = n;
	m->lock_ids = palloc(sizeof(int64) * Max(n, 1));
	m->skus = palloc(sizeof(char *) * Max(n, 1));
	m->quantities = palloc(sizeof(int64) * Max(n, 1));
}

/*
 * One lock (the checkout's own path): its reservations in sku order (the
 * primary key's order), each inventory row locked as it comes (see
 * stock_load_cart); then, per sku, the reservation deleted and the ledger
 * row, reached by its ctid, updated.  The reads go through the primary keys
 * without the executor; every update's plan is a probe by key.
 */
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
 * move_one_lock's writes without statements (rowwrite.c): each reservation
 * (held_tids, read under the lock's row lock, which every writer of its
 * reservations holds) deleted, each ledger row (ledger_tids, locked) updated;
 * false, with nothing written, when either table runs code a user added.
 */
static bool
move_one_direct(const MovedStock *moved, ItemPointerData *held_tids,
				ItemPointerData *ledger_tids, bool sell)
{
	RowWrite	held;
	RowWrite	ledger;
	int			columns[2];
	int			i;

	if (!stock_writes_begin(&held, &ledger))
		return false;
	columns[0] = row_attnum(&ledger, "reserved");
	columns[1] = row_attnum(&ledger, "on_hand");
	for (i = 0; i < moved->n; i++)
	{
		int64		deltas[2] = {-moved->quantities[i], -moved->quantities[i]};

		CHECK_FOR_INTERRUPTS();
		row_delete(&held, &held_tids[i]);
		row_add(&ledger, &ledger_tids[i], columns, deltas, sell ? 2 : 1);
	}
	stock_writes_end(&held, &ledger);
	return true;
}

static void
move_one_lock(int64 lock_id, bool sell, MovedStock *moved)
{
	KeyAccess	ka;
	ItemPointerData *held_tids = palloc(sizeof(ItemPointerData) * 4);
	int			cap = 4;
	int			n = 0;
	int			i;

	moved_alloc(moved, cap);
	key_open(&ka, "reservations", AccessShareLock);
	{
		int			a_sku = key_attnum(&ka, "sku");
		int			a_quantity = key_attnum(&ka, "quantity");
		Datum	   *columns;

		key_scan(&ka, key_attnum(&ka, "lock_id"), F_INT8EQ, Int64GetDatum(lock_id));
		while (key_next(&ka))
		{
			CHECK_FOR_INTERRUPTS();
			if (n == cap)
			{
				cap *= 2;
				moved->lock_ids = repalloc(moved->lock_ids, sizeof(int64) * cap);
				moved->skus = repalloc(moved->skus, sizeof(char *) * cap);
				moved->quantities = repalloc(moved->quantities, sizeof(int64) * cap);
				held_tids = repalloc(held_tids, sizeof(ItemPointerData) * cap);
			}
			columns = key_deform(&ka, ka.found);
			held_tids[n] = ka.found->t_self;
			moved->lock_ids[n] = lock_id;
			moved->skus[n] = TextDatumGetCString(columns[a_sku - 1]);
			moved->quantities[n] = DatumGetInt64(columns[a_quantity - 1]);
			n++;
		}
		key_scan_end(&ka);
	}
	key_close(&ka);
	moved->n = n;

	/* the primary key's order is sku order: lock every row first, then move */
	{
		ItemPointerData *tids = palloc(sizeof(ItemPointerData) * Max(n, 1));
		Datum		values[4];
		Ledger		ledger;

		ledger_open(&ledger);
		for (i = 0; i < n; i++)
		{
			LedgerRow	row;

			CHECK_FOR_INTERRUPTS();
			/* a reservation's sku is in the inventory (foreign key) */
			if (!lock_ledger_row(&ledger, moved->skus[i], &row))
				ledger_row_moved(moved->skus[i]);
			tids[i] = row.tid;
		}
		key_close(&ledger.ka);

		if (move_one_direct(moved, held_tids, tids, sell))
			return;
		values[0] = Int64GetDatum(lock_id);
		for (i = 0; i < n; i++)
		{
			CHECK_FOR_INTERRUPTS();
			values[1] = CStringGetTextDatum(moved->skus[i]);
			values[2] = Int64GetDatum(moved->quantities[i]);
			values[3] = PointerGetDatum(&tids[i]);
			if (stmt_exec(&move_one[sell], values, NULL, false) != 1)
				ledger_row_moved(moved->skus[i]);
		}
	}
}

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
	MovedStock	moved;
	LockRow   **by_id;
	int			i;

	if (n_locks == 1)
		move_one_lock(locks[0]->lock_id, sell, &moved);
	else
	{
		Datum		values[1] = {lock_id_array(locks, n_locks)};
		SPITupleTable *tt;
		Statement  *st = &move_set[sell];

		stmt_exec(&lock_set, values, NULL, false);
		moved_alloc(&moved, stmt_exec(st, values, NULL, false));
		tt = SPI_tuptable;
		for (i = 0; i < moved.n; i++)
		{
			CHECK_FOR_INTERRUPTS();
			moved.lock_ids[i] = stmt_int8(st, tt, i, MV_LOCK_ID);
			moved.skus[i] = stmt_text(st, tt, i, MV_SKU);
			moved.quantities[i] = stmt_int8(st, tt, i, MV_QUANTITY);
		}
	}

	if (moved.n == 0 || !(event_wanted(stock_event) || (!sell && event_wanted(EV_ROLLBACK_STEP))))
		return;

	by_id = locks_sorted_by_id(locks, n_locks);
	for (i = 0; i < moved.n;)
	{
		int64		lock_id = moved.lock_ids[i];
		LockRow    *lock = locks_find(by_id, n_locks, lock_id);
		const char *cart_id = lock ? lock->cart_id : NULL;
		StringInfoData items;
		int64		units = 0;
		CheckoutEvent ev;

		initStringInfo(&items);
		appendStringInfoChar(&items, '[');
		for (; i < moved.n && moved.lock_ids[i] == lock_id; i++)
		{
			CHECK_FOR_INTERRUPTS();
			if (items.len > 1)
				appendStringInfoChar(&items, ',');
			appendStringInfoString(&items, "{\"sku\":");
			escape_json(&items, moved.skus[i]);
			appendStringInfo(&items, ",\"quantity\":" INT64_FORMAT "}", moved.quantities[i]);
			units += moved.quantities[i];
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
