/*
 * stock.c — the only code that changes checkout.inventory.
 *
 * Locking protocol: every statement that moves stock first locks the ledger
 * rows it needs in sku order (SELECT ... ORDER BY sku FOR NO KEY UPDATE), so
 * two carts sharing skus, or a cart and a sweep, can never deadlock; NO KEY
 * keeps the foreign-key checks of checkout.reservations from blocking.
 * Reservation checks availability on the locked rows and then moves all skus
 * in one statement: all or nothing, and the CHECK constraint
 * (reserved <= on_hand) backs the check up, so stock cannot be oversold.
 * Release and commit work on a whole set of locks with one ledger update per
 * sku: a sweep of thousands of locks on a hot sku touches its row once.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "checkout.h"

#define CART_SKUS_SQL \
	"SELECT sku, pg_catalog.sum(quantity)::bigint AS q FROM checkout.lock_lines " \
	"WHERE lock_id = $1 GROUP BY sku"

bool
stock_reserve(int64 lock_id, const char *cart_id, StockShortfall *shortfall)
{
	static SPIPlanPtr count_plan = NULL;
	static SPIPlanPtr lock_plan = NULL;
	static SPIPlanPtr move_plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(lock_id)};
	int64		distinct_skus;
	int64		units = 0;
	int			n;
	int			i;

	checkout_exec(&count_plan,
				  "SELECT pg_catalog.count(DISTINCT sku) FROM checkout.lock_lines WHERE lock_id = $1",
				  1, types, values, NULL, false, 1);
	distinct_skus = checkout_int8_cell(SPI_tuptable, 0, 1, NULL);

	n = checkout_exec(&lock_plan,
					  "SELECT i.sku, w.q, i.on_hand - i.reserved "
					  "FROM checkout.inventory i JOIN (" CART_SKUS_SQL ") w ON w.sku = i.sku "
					  "ORDER BY i.sku FOR NO KEY UPDATE OF i",
					  1, types, values, NULL, false, 0);

	memset(shortfall, 0, sizeof(*shortfall));
	if (n < distinct_skus)
	{
		/* a sku vanished from the catalog since cart validation */
		shortfall->unknown_sku = true;
		return false;
	}
	for (i = 0; i < n; i++)
	{
		int64		wanted = checkout_int8_cell(SPI_tuptable, i, 2, NULL);
		int64		available = checkout_int8_cell(SPI_tuptable, i, 3, NULL);

		if (wanted > available)
		{
			shortfall->sku = checkout_text_cell(SPI_tuptable, i, 1);
			shortfall->wanted = wanted;
			shortfall->available = available;
			return false;
		}
		units += wanted;
	}

	checkout_exec(&move_plan,
				  "WITH w AS (" CART_SKUS_SQL "), "
				  "held AS (INSERT INTO checkout.reservations (lock_id, sku, quantity) "
				  "         SELECT $1, sku, q FROM w) "
				  "UPDATE checkout.inventory i SET reserved = i.reserved + w.q "
				  "FROM w WHERE i.sku = w.sku",
				  1, types, values, NULL, false, 0);

	if (event_wanted(EVC_STOCK, false))
	{
		CheckoutEvent ev;

		event_begin(&ev, EVC_STOCK, "stock reserved", lock_id, cart_id, false);
		event_add_int(&ev, "skus", n);
		event_add_int(&ev, "units", units);
		event_emit(&ev);
	}
	return true;
}

/*
 * Releases (sell = false) or sells (sell = true) everything the locks hold.
 * Emits, per lock, "stock released"/"stock committed" and, for a release, the
 * rollback step.
 */
static void
move_held_stock(Datum lock_ids, bool sell)
{
	static SPIPlanPtr lock_plan = NULL;
	static SPIPlanPtr release_plan = NULL;
	static SPIPlanPtr sell_plan = NULL;
	static const Oid types[1] = {INT8ARRAYOID};
	Datum		values[1] = {lock_ids};
	SPITupleTable *rows;
	int			n;
	int			i;

#define MOVE_SQL(set_clause) \
	"WITH gone AS (DELETE FROM checkout.reservations WHERE lock_id = ANY ($1) " \
	"              RETURNING lock_id, sku, quantity), " \
	"per_sku AS (SELECT sku, pg_catalog.sum(quantity)::bigint AS q FROM gone GROUP BY sku), " \
	"moved AS (UPDATE checkout.inventory i SET " set_clause " FROM per_sku p WHERE i.sku = p.sku) " \
	"SELECT g.lock_id, l.cart_id, pg_catalog.sum(g.quantity)::bigint, " \
	"       pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('sku', g.sku, 'quantity', g.quantity) " \
	"                           ORDER BY g.sku)::text " \
	"FROM gone g JOIN checkout.locks l ON l.lock_id = g.lock_id " \
	"GROUP BY g.lock_id, l.cart_id ORDER BY g.lock_id"

	checkout_exec(&lock_plan,
				  "SELECT i.sku FROM checkout.inventory i "
				  "WHERE i.sku IN (SELECT r.sku FROM checkout.reservations r WHERE r.lock_id = ANY ($1)) "
				  "ORDER BY i.sku FOR NO KEY UPDATE",
				  1, types, values, NULL, false, 0);
	if (sell)
		n = checkout_exec(&sell_plan,
						  MOVE_SQL("on_hand = i.on_hand - p.q, reserved = i.reserved - p.q"),
						  1, types, values, NULL, false, 0);
	else
		n = checkout_exec(&release_plan,
						  MOVE_SQL("reserved = i.reserved - p.q"),
						  1, types, values, NULL, false, 0);
#undef MOVE_SQL

	if (!event_wanted(EVC_STOCK | EVC_ROLLBACKS, false))
		return;
	/* emitting may run SQL (events table), which replaces SPI_tuptable */
	rows = SPI_tuptable;
	for (i = 0; i < n; i++)
	{
		int64		lock_id = checkout_int8_cell(rows, i, 1, NULL);
		char	   *cart_id = checkout_text_cell(rows, i, 2);
		int64		units = checkout_int8_cell(rows, i, 3, NULL);
		char	   *items = checkout_text_cell(rows, i, 4);
		CheckoutEvent ev;

		if (!sell && event_wanted(EVC_ROLLBACKS, false))
		{
			event_begin(&ev, EVC_ROLLBACKS, "rollback step completed", lock_id, cart_id, false);
			event_add_text(&ev, "step", "release_reservations");
			event_add_int(&ev, "units", units);
			event_emit(&ev);
		}
		if (event_wanted(EVC_STOCK, false))
		{
			event_begin(&ev, EVC_STOCK, sell ? "stock committed" : "stock released",
						lock_id, cart_id, false);
			event_add_int(&ev, "units", units);
			event_add_raw(&ev, "items", items);
			event_emit(&ev);
		}
	}
}

void
stock_release(Datum lock_ids)
{
	move_held_stock(lock_ids, false);
}

void
stock_commit(Datum lock_ids)
{
	move_held_stock(lock_ids, true);
}
