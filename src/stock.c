/*
 * stock.c — the stock policy: what a reservation takes, when it may, and
 * what a release or a sale moves.  Every row it reads or writes goes
 * through store.c.
 *
 * Locking protocol: every path that moves stock first locks the ledger rows
 * it needs in sku order (FOR NO KEY UPDATE), so two carts sharing skus, or a
 * cart and a sweep, can never deadlock; NO KEY keeps the foreign-key checks
 * of checkout.reservations from blocking.  Reservation checks availability
 * on the locked rows, in C, before anything is written, then writes every
 * sku: all or nothing, and the CHECK constraint (reserved <= on_hand) backs
 * the check up, so stock cannot be oversold.  A late reservation decides
 * from rows read and checks the decision again on the rows once locked
 * (stock_lock_late), so it, too, writes only what the locked rows allow.
 * Release and commit work on a set of locks with one ledger update per sku:
 * a sweep of thousands of locks on a hot sku touches its row once.
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "miscadmin.h"
#include "utils/json.h"
#include "utils/varlena.h"

#include "events.h"
#include "stock.h"
#include "store.h"
#include "util.h"

/* sku order: the column's collation, as every ORDER BY sku of the other paths */
static int
sku_cmp(const char *a, const char *b)
{
	return varstr_cmp(a, strlen(a), b, strlen(b), DEFAULT_COLLATION_OID);
}

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
 * (in sku order, like every path that moves stock), or only read when
 * !lock_rows (a late reservation locks them last).
 */
void
stock_load_cart(int64 lock_id, CartStock *out, bool lock_rows)
{
	CartLine   *lines;
	int			n = store_cart_lines(lock_id, &lines);
	char	  **skus = palloc(sizeof(char *) * Max(n, 1));
	LedgerRow  *ledger = palloc(sizeof(LedgerRow) * Max(n, 1));
	int			n_skus = 0;
	int			i;

	qsort(lines, n, sizeof(CartLine), cmp_cart_line);
	for (i = 0; i < n; i++)
		if (i == 0 || strcmp(lines[i].sku, lines[i - 1].sku) != 0)
			skus[n_skus++] = lines[i].sku;
	store_ledger_rows(skus, n_skus, lock_rows, ledger);

	out->n_lines = n;
	out->n_found = 0;
	out->line_ids = palloc(sizeof(char *) * Max(n, 1));
	out->skus = palloc(sizeof(char *) * Max(n, 1));
	out->quantities = palloc(sizeof(int64) * Max(n, 1));
	out->cart_prices = palloc(sizeof(int64) * Max(n, 1));
	out->available = palloc(sizeof(int64) * Max(n, 1));
	out->unit_prices = palloc(sizeof(int64) * Max(n, 1));
	out->ledger = palloc(sizeof(LedgerRow *) * Max(n, 1));
	n_skus = 0;
	for (i = 0; i < n; i++)
	{
		LedgerRow  *row;
		int			f = out->n_found;

		CHECK_FOR_INTERRUPTS();
		if (i > 0 && strcmp(lines[i].sku, lines[i - 1].sku) != 0)
			n_skus++;
		row = &ledger[n_skus];
		if (!row->found)
			continue;			/* not in the inventory: not found */
		out->line_ids[f] = lines[i].line_id;
		out->skus[f] = lines[i].sku;
		out->quantities[f] = lines[i].quantity;
		out->cart_prices[f] = lines[i].cart_price;
		out->available[f] = row->on_hand - row->reserved;
		out->unit_prices[f] = row->unit_price;
		out->ledger[f] = row;
		out->n_found++;
	}
}

/* The reservation's rows and ledger changes; its ledger rows are locked. */
void
stock_write_reservation(int64 lock_id, const StockReservation *res)
{
	store_reservation_insert(lock_id, res->skus, res->wanted, res->ledger, res->n);
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
	res.ledger = palloc(sizeof(LedgerRow *) * Max(cart->n_found, 1));
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
			res.ledger[n] = cart->ledger[i];
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
	LedgerRow  *rows = palloc(sizeof(LedgerRow) * Max(res->n, 1));
	int			i;

	store_ledger_rows(res->skus, res->n, true, rows);
	for (i = 0; i < res->n; i++)
	{
		if (!rows[i].found || rows[i].on_hand - rows[i].reserved < res->wanted[i] ||
			rows[i].unit_price != res->unit_prices[i])
			return false;
		res->ledger[i] = &rows[i];
	}
	return true;
}

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

	store_held_stock_move(lock_ids_of(locks, n_locks), n_locks, sell, &moved);

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
	store_held_stock_lock(lock_ids_of(locks, n), n);
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
