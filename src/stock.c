/*
 * stock.c — the stock policy: what a reservation takes, when it may, and
 * what a release or a sale moves.  Every row it reads or writes goes
 * through store.c.
 *
 * Row-locking protocol: every path that moves stock row-locks the stock
 * rows it needs in one order, by sku and within a sku by stripe (an
 * unstriped sku's inventory row counts as its stripe 0), FOR NO KEY UPDATE,
 * so two carts sharing skus, or a cart and a sweep, can never deadlock; NO
 * KEY keeps the foreign-key checks of checkout.reservations from blocking.
 * Reservation checks availability on the row-locked rows, in C, before it
 * writes a sku, and the CHECK constraints (reserved <= on_hand) back the
 * check up, so stock cannot be oversold.  A late reservation decides from
 * rows read and checks the decision again on the rows once row-locked
 * (stock_rowlock_late), so it, too, writes only what those rows allow. Release
 * and commit work on a set of locks with one update per stock row: a sweep of
 * thousands of locks on a hot sku touches each of its rows once.
 *
 * A striped sku (checkout_stripe) has its units in several rows, so that
 * its buyers do not all queue on one.  A reservation takes the stripe its
 * lock hashes to, or, when that one is short as read, the one with the most
 * units: it row-locks that stripe alone and writes there, in a
 * subtransaction of its own.  When that stripe turns out short after all,
 * the subtransaction is rolled back, which lets go of the stripe's row
 * lock, and the reservation row-locks every stripe of the sku in stripe
 * order and takes
 * from as many as it needs (its own first): it is refused only when the
 * sku's total is short, and it never waits for a lower stripe while holding
 * a higher one, so it cannot deadlock.  A reservation records the stripes it
 * took from, and release and sale go back to exactly those.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "events.h"
#include "stock.h"
#include "store.h"
#include "util.h"

static int
cmp_cart_line(const void *a, const void *b)
{
	const CartLine *x = (const CartLine *) a;
	const CartLine *y = (const CartLine *) b;
	int				c = store_sku_cmp(x->sku, y->sku);

	return c != 0 ? c : (x->line_no > y->line_no) - (x->line_no < y->line_no);
}

/*
 * The lock's lines in sku order, each with its sku's inventory row
 * row-locked (in sku order, like every path that moves stock), or only read
 * when !rowlock (a late reservation row-locks them last).
 */
void
stock_load_cart(int64 lock_id, CartStock *out, bool rowlock)
{
	CartLine  *lines;
	int		   n = store_cart_lines(lock_id, &lines);
	char	 **skus = palloc(sizeof(char *) * Max(n, 1));
	LedgerRow *ledger = palloc(sizeof(LedgerRow) * Max(n, 1));
	int		   n_skus = 0;
	int		   i;

	qsort(lines, n, sizeof(CartLine), cmp_cart_line);
	for (i = 0; i < n; i++)
		if (i == 0 || strcmp(lines[i].sku, lines[i - 1].sku) != 0)
			skus[n_skus++] = lines[i].sku;
	store_ledger_rows(skus, n_skus, rowlock, ledger);

	out->n_lines = n;
	out->n_found = 0;
	out->line_ids = palloc(sizeof(char *) * Max(n, 1));
	out->skus = palloc(sizeof(char *) * Max(n, 1));
	out->quantities = palloc(sizeof(int64) * Max(n, 1));
	out->cart_prices = palloc(sizeof(int64) * Max(n, 1));
	out->unit_prices = palloc(sizeof(int64) * Max(n, 1));
	out->ledger = palloc(sizeof(LedgerRow *) * Max(n, 1));
	n_skus = 0;
	for (i = 0; i < n; i++)
	{
		LedgerRow *row;
		int		   f = out->n_found;

		CHECK_FOR_INTERRUPTS();
		if (i > 0 && strcmp(lines[i].sku, lines[i - 1].sku) != 0)
			n_skus++;
		row = &ledger[n_skus];
		if (!row->found)
			continue; /* not in the inventory: not found */
		out->line_ids[f] = lines[i].line_id;
		out->skus[f] = lines[i].sku;
		out->quantities[f] = lines[i].quantity;
		out->cart_prices[f] = lines[i].cart_price;
		out->unit_prices[f] = row->unit_price;
		out->ledger[f] = row;
		out->n_found++;
	}
}

/*
 * A late reservation's rows and ledger changes; the caller holds its inventory
 * rows row-locked.
 */
void
stock_write_reservation(int64 lock_id, const StockReservation *res)
{
	ReservedPart *parts = palloc(sizeof(ReservedPart) * Max(res->n, 1));
	int			  i;

	for (i = 0; i < res->n; i++)
	{
		parts[i].sku = res->skus[i];
		parts[i].stripe = 0;
		parts[i].quantity = res->wanted[i];
		parts[i].version = res->ledger[i]->version;
	}
	store_reservation_insert(lock_id, parts, res->n);
}

/*
 * The fast way to a striped sku's units: row-lock one stripe, and if it has
 * the units, reserve them there.  In a subtransaction, so that a stripe
 * found short is let go (its row lock with the subtransaction) before the
 * caller row-locks every stripe in order.  True when reserved.
 */
static bool
reserve_in_stripe(int64 lock_id, const char *sku, int32 stripe, int64 wanted)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	bool		  reserved = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		StripeRow row;

		if (store_stripes_rowlock(sku, &stripe, 1, &row) &&
			row.on_hand - row.reserved >= wanted)
		{
			ReservedPart part = {(char *) sku, stripe, wanted, row.version};

			store_reservation_insert(lock_id, &part, 1);
			reserved = true;
		}
		if (reserved)
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ReThrowError(edata);
	}
	PG_END_TRY();
	return reserved;
}

/*
 * Reserves wanted units of a striped sku: in one stripe the fast way when
 * one has them as read (its lock's, else the fullest), else, or when that
 * stripe turned out short, from every stripe row-locked in order, the
 * lock's own first.  Parts taken that way are added to parts (for the caller
 * to write); false with the sku's total available when it is short.
 */
static bool
reserve_striped(int64 lock_id, const char *sku, int64 wanted,
				const LedgerRow *row, ReservedPart *parts, int *n_parts,
				int64 *available)
{
	int		   n = row->n_stripes;
	int		   own = (int) (lock_id % n);
	int		   target = own;
	int32	  *numbers = palloc(sizeof(int32) * n);
	StripeRow *rowlocked = palloc(sizeof(StripeRow) * n);
	int64	   total = 0;
	int64	   left = wanted;
	int		   k;

#define STRIPE_AVAILABLE(k) \
	(row->stripes[k].on_hand - row->stripes[k].reserved)
	if (STRIPE_AVAILABLE(own) < wanted)
		for (k = 0; k < n; k++)
			if (STRIPE_AVAILABLE(k) > STRIPE_AVAILABLE(target))
				target = k;
	if (STRIPE_AVAILABLE(target) >= wanted &&
		reserve_in_stripe(lock_id, sku, row->stripes[target].stripe, wanted))
		return true;
#undef STRIPE_AVAILABLE

	for (k = 0; k < n; k++)
		numbers[k] = row->stripes[k].stripe;
	/*
	 * checkout_stripe cannot change the stripes under the stock table lock;
	 * a DELETE, or an UPDATE of the key, outside it can
	 */
	if (!store_stripes_rowlock(sku, numbers, n, rowlocked))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("checkout: the stripes of sku %s changed while the "
						"call waited for them",
						quote_user_text(sku)),
				 errhint("Retry the call.")));
	for (k = 0; k < n; k++)
		total += rowlocked[k].on_hand - rowlocked[k].reserved;
	if (total < wanted)
	{
		*available = total;
		return false;
	}
	for (k = 0; left > 0; k = (k + 1) % n)
	{
		int	  i = (own + k) % n;
		int64 take = Min(left, rowlocked[i].on_hand - rowlocked[i].reserved);

		if (take <= 0)
			continue;
		parts[*n_parts].sku = (char *) sku;
		parts[*n_parts].stripe = rowlocked[i].stripe;
		parts[*n_parts].quantity = take;
		parts[*n_parts].version = rowlocked[i].version;
		(*n_parts)++;
		left -= take;
	}
	return true;
}

/*
 * The cart's lines' price of a sku, refreshed once its inventory row is
 * row-locked.
 */
static void
refresh_cart_lines(CartStock *cart, const LedgerRow *row)
{
	int i;

	for (i = 0; i < cart->n_found; i++)
		if (cart->ledger[i] == row)
			cart->unit_prices[i] = row->unit_price;
}

/*
 * Reserves the cart's summed quantity of each sku, or nothing: false with
 * the first shortfall (in sku order) when a sku has too little stock.  The
 * rows are row-locked in sku order: those the load row-locked, then the
 * rest (rows after a striped sku, a striped sku's stripes).  With `late` the
 * cart was only read and has no striped sku: the reservation is decided and
 * returned there, for stock_rowlock_late to check and stock_write_reservation
 * to write; a striped sku makes it false, to be decided again the other way.
 */
bool
stock_reserve(const LockRow *lock, CartStock *cart, StockShortfall *shortfall,
			  StockReservation *late)
{
	StockReservation res;
	ReservedPart	*parts;
	int				 n_parts = 0;
	int				 max_parts = 0;
	bool			 wrote_striped = false;
	int64			 units = 0;
	int				 i;

	res.skus = palloc(sizeof(char *) * Max(cart->n_found, 1));
	res.wanted = palloc(sizeof(int64) * Max(cart->n_found, 1));
	res.unit_prices = palloc(sizeof(int64) * Max(cart->n_found, 1));
	res.ledger = palloc(sizeof(LedgerRow *) * Max(cart->n_found, 1));
	res.n = 0;

	/* lines come sorted by sku: sum each run (sums were checked at start) */
	for (i = 0; i < cart->n_found; i++)
	{
		int n = res.n;

		if (n > 0 && strcmp(res.skus[n - 1], cart->skus[i]) == 0)
			res.wanted[n - 1] += cart->quantities[i];
		else
		{
			res.skus[n] = cart->skus[i];
			res.wanted[n] = cart->quantities[i];
			res.ledger[n] = cart->ledger[i];
			res.n = ++n;
		}
	}
	/* a part per sku, or per stripe of a striped sku */
	for (i = 0; i < res.n; i++)
		max_parts += Max(res.ledger[i]->n_stripes, 1);
	parts = palloc(sizeof(ReservedPart) * Max(max_parts, 1));
	shortfall->sku = NULL;
	for (i = 0; i < res.n && shortfall->sku == NULL; i++)
	{
		LedgerRow *row = res.ledger[i];
		int64	   available;

		CHECK_FOR_INTERRUPTS();
		if (row->n_stripes > 0)
		{
			if (late)
				return false; /* decided again, the rows taken in order */
			if (reserve_striped(lock->lock_id, res.skus[i], res.wanted[i], row,
								parts, &n_parts, &available))
			{
				wrote_striped = true;
				continue;
			}
		}
		else
		{
			if (!late && !row->rowlocked &&
				store_ledger_rowlock(res.skus[i], row))
				refresh_cart_lines(cart, row);
			available = row->found ? row->on_hand - row->reserved : 0;
			if (available >= res.wanted[i])
			{
				parts[n_parts].sku = res.skus[i];
				parts[n_parts].stripe = 0;
				parts[n_parts].quantity = res.wanted[i];
				parts[n_parts].version = row->version;
				n_parts++;
				continue;
			}
		}
		shortfall->sku = res.skus[i];
		shortfall->wanted = res.wanted[i]; /* the sku's whole want */
		shortfall->available = available;
	}
	if (shortfall->sku != NULL)
	{
		/*
		 * nothing of a refused reservation stays: what a stripe took goes back
		 */
		if (wrote_striped)
		{
			MovedStock moved;

			store_held_stock_move(&lock->lock_id, 1, false, &moved);
		}
		return false;
	}
	for (i = 0; i < res.n; i++)
	{
		res.unit_prices[i] = res.ledger[i]->unit_price;
		units += res.wanted[i];
	}

	if (late)
		*late = res;
	else
		store_reservation_insert(lock->lock_id, parts, n_parts);

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
 * Row-locks, in sku order, the rows of a reservation stock_reserve decided
 * from rows it only read, and checks that each still has the stock and the
 * price it was decided on: then stock_write_reservation may write it.
 * False when one changed: nothing is written, and the caller decides again
 * with the rows row-locked from the start.
 */
bool
stock_rowlock_late(StockReservation *res)
{
	LedgerRow *rows = palloc(sizeof(LedgerRow) * Max(res->n, 1));
	int		   i;

	store_ledger_rows(res->skus, res->n, true, rows);
	for (i = 0; i < res->n; i++)
	{
		/* a sku striped meanwhile is decided again too */
		if (!rows[i].found || !rows[i].rowlocked ||
			rows[i].on_hand - rows[i].reserved < res->wanted[i] ||
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
	EventKind  stock_event = sell ? EV_STOCK_COMMITTED : EV_STOCK_RELEASED;
	MovedStock moved;
	LockRow	 **by_id;
	int		   i;

	store_held_stock_move(lock_ids_of(locks, n_locks), n_locks, sell, &moved);

	if (moved.n == 0 || !(event_wanted(stock_event) ||
						  (!sell && event_wanted(EV_ROLLBACK_STEP))))
		return;

	by_id = locks_sorted_by_id(locks, n_locks);
	for (i = 0; i < moved.n;)
	{
		int64		   lock_id = moved.lock_ids[i];
		LockRow		  *lock = locks_find(by_id, n_locks, lock_id);
		const char	  *cart_id = lock ? lock->cart_id : NULL;
		StringInfoData items;
		int64		   units = 0;
		CheckoutEvent  ev;

		initStringInfo(&items);
		appendStringInfoChar(&items, '[');
		for (; i < moved.n && moved.lock_ids[i] == lock_id; i++)
		{
			CHECK_FOR_INTERRUPTS();
			if (items.len > 1)
				appendStringInfoChar(&items, ',');
			appendStringInfoString(&items, "{\"sku\":");
			escape_json(&items, moved.skus[i]);
			appendStringInfo(&items, ",\"quantity\":" INT64_FORMAT "}",
							 moved.quantities[i]);
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
 * Row-locks, in sku order, the inventory rows of everything the locks
 * hold.  A caller that will sell the stock of some and release that of
 * others in one transaction calls this first, so that it row-locks the rows
 * in the one order every checkout takes them in, not in sku order twice
 * over.
 */
void
stock_rowlock_held(LockRow *const *locks, int n)
{
	store_held_stock_rowlock(lock_ids_of(locks, n), n);
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
