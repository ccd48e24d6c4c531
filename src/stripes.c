/*
 * stripes.c — striped stock: a popular sku's units split over several rows
 * of checkout.inventory_stripes, so that its buyers do not all queue on one
 * row (stock.c reserves from them).  Here: how a sku is striped
 * (checkout_stripe), how its units are spread again and its totals folded
 * into its inventory row (checkout_rebalance, and the worker), and a
 * restock of a striped sku (the trigger on checkout.inventory).
 *
 * A striped sku's inventory row holds no units of its own: its on_hand and
 * reserved are the stripes' totals as of the last fold (checkout.stock
 * shows them as they are).  Row-lock order, as everywhere: a sku's
 * inventory row, then its stripes in stripe order.  Every change of a sku's
 * striping holds the striping table lock (store_striping_table_lock), so no
 * call moving stock runs meanwhile.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "errors.h"
#include "store.h"
#include "stripes.h"
#include "util.h"

PG_FUNCTION_INFO_V1(checkout_stripe);
PG_FUNCTION_INFO_V1(checkout_rebalance);
PG_FUNCTION_INFO_V1(checkout_inventory_restock);

#define MAX_STRIPES 256

/*
 * Spreads `available` units over the stripes: each keeps its reserved
 * units and gets an even share of the rest (the first ones one more).
 */
static void
spread(StripeRow *rows, int n, int64 available)
{
	int k;

	for (k = 0; k < n; k++)
		rows[k].on_hand = rows[k].reserved + available / n +
						  (k < available % n ? 1 : 0);
}

/*
 * Splits the sku's units over `stripes` rows (1: back into its inventory row).
 */
Datum
checkout_stripe(PG_FUNCTION_ARGS)
{
	char *sku = require_text_arg(fcinfo, 0, "sku", CHECKOUT_MAX_IDENTIFIER);
	int	  stripes;
	int	  spi_state;
	int64 on_hand;
	int64 reserved;
	StripeRow *old;
	int		   n_old;
	int64	  *held;
	int		   k;

	require_arg(fcinfo, 1, "stripes");
	stripes = PG_GETARG_INT32(1);
	if (stripes < 1 || stripes > MAX_STRIPES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("stripes must be between 1 and %d", MAX_STRIPES)));

	spi_state = checkout_spi_connect();
	store_striping_table_lock();
	if (!store_sku_rowlock(sku, true, &on_hand, &reserved))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("sku %s is not in the inventory",
							   quote_user_text(sku))));
	n_old = store_stripes_rowlock_all(sku, &old);
	if (n_old > 0)
		store_stripes_totals(old, n_old, &on_hand, &reserved);

	/* each lock's reservation goes whole into the stripe its lock hashes to */
	held = palloc(sizeof(int64) * stripes);
	store_reservations_restripe(sku, stripes, held);
	if (stripes == 1)
		store_stripes_replace(sku, 0, NULL, NULL);
	else
	{
		StripeRow *rows = palloc(sizeof(StripeRow) * stripes);
		int64	  *units = palloc(sizeof(int64) * stripes);

		for (k = 0; k < stripes; k++)
			rows[k].reserved = held[k];
		spread(rows, stripes, on_hand - reserved);
		for (k = 0; k < stripes; k++)
			units[k] = rows[k].on_hand;
		store_stripes_replace(sku, stripes, units, held);
	}
	/*
	 * written even when the totals are the same: a REPEATABLE READ snapshot
	 * taken before the striping then fails to row-lock the row (40001),
	 * instead of reserving from it as if the sku were not striped
	 */
	store_sku_set_totals(sku, on_hand, reserved);
	if ((n_old > 0) != (stripes > 1))
		store_striping_changed();
	checkout_spi_finish(spi_state);
	PG_RETURN_INT32(stripes);
}

/*
 * One striped sku: its totals folded into its inventory row, and, when a
 * stripe has less than half its share of the available units, every
 * stripe's share made even.  Returns whether it spread the units.
 */
static bool
rebalance_sku(const char *sku)
{
	int64	   folded_on_hand;
	int64	   folded_reserved;
	int64	   on_hand;
	int64	   reserved;
	int64	   least = PG_INT64_MAX;
	StripeRow *rows;
	int		   n;
	int		   k;
	bool	   spread_out = false;

	if (!store_sku_rowlock(sku, false, &folded_on_hand, &folded_reserved))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("sku %s is not in the inventory",
							   quote_user_text(sku))));

	/*
	 * The totals to fold are the stripes' as committed: read, not row-locked,
	 * so a fold keeps no buyer waiting.  Only spreading the units needs the
	 * stripes row-locked, in stripe order.
	 */
	n = store_stripes_read(sku, &rows);
	for (k = 0; k < n; k++)
		least = Min(least, rows[k].on_hand - rows[k].reserved);
	store_stripes_totals(rows, n, &on_hand, &reserved);
	if (n > 0 && least * n * 2 < on_hand - reserved)
	{
		n = store_stripes_rowlock_all(sku, &rows);
		store_stripes_totals(rows, n, &on_hand, &reserved);
		spread(rows, n, on_hand - reserved);
		store_stripes_set_on_hand(sku, rows, n);
		spread_out = true;
	}
	/* the inventory row is row-locked: what it holds is what was read */
	if (n > 0 && (on_hand != folded_on_hand || reserved != folded_reserved))
		store_sku_set_totals(sku, on_hand, reserved);
	return spread_out;
}

/*
 * Rebalances every striped sku, each in the caller's transaction; returns how
 * many it spread, and how many skus are striped in *striped.
 */
int
checkout_rebalance_all(int *striped)
{
	char **skus;
	int	   n = store_striped_skus(&skus);
	int	   spread_out = 0;
	int	   i;

	*striped = n;
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (rebalance_sku(skus[i]))
			spread_out++;
	}
	return spread_out;
}

Datum
checkout_rebalance(PG_FUNCTION_ARGS)
{
	int spi_state = checkout_spi_connect();
	int n;
	int striped;

	if (PG_ARGISNULL(0))
		n = checkout_rebalance_all(&striped);
	else
	{
		char *sku = require_text_arg(fcinfo, 0, "sku",
									 CHECKOUT_MAX_IDENTIFIER);

		n = rebalance_sku(sku) ? 1 : 0;
	}
	checkout_spi_finish(spi_state);
	PG_RETURN_INT32(n);
}

/*
 * BEFORE UPDATE OF on_hand ON checkout.inventory: a restock of a striped
 * sku.  The inventory row holds the totals as of the last fold, so the
 * change the statement made to on_hand (new - old, as `on_hand = on_hand +
 * 10` means it) goes to the stripes, spread evenly, and the row gets the
 * totals as they are now, before its CHECK constraint judges it.  On_hand
 * below what is reserved is refused as that constraint would refuse it.  An
 * unstriped sku's row is left as the statement made it.  A checkout's own
 * writes of the row name no column, so the trigger never fires for them.
 */
Datum
checkout_inventory_restock(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	 desc;
	HeapTuple	 old_row;
	HeapTuple	 new_row;
	int			 a_sku, a_on_hand, a_reserved;
	bool		 isnull;
	int64		 delta;
	char		*sku;
	StripeRow	*rows;
	int			 n;
	int64		 on_hand = 0;
	int64		 reserved = 0;
	int			 spi_state;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg(
					 "checkout.inventory_restock() must be a BEFORE UPDATE ... FOR EACH ROW trigger")));
	old_row = trigdata->tg_trigtuple;
	new_row = trigdata->tg_newtuple;
	if (store_own_totals_write())
		return PointerGetDatum(new_row);
	desc = RelationGetDescr(trigdata->tg_relation);
	a_sku = SPI_fnumber(desc, "sku");
	a_on_hand = SPI_fnumber(desc, "on_hand");
	a_reserved = SPI_fnumber(desc, "reserved");
	if (a_sku <= 0 || a_on_hand <= 0 || a_reserved <= 0)
		elog(ERROR,
			 "checkout: checkout.inventory lacks a column of the extension's");
	delta = DatumGetInt64(heap_getattr(new_row, a_on_hand, desc, &isnull)) -
			DatumGetInt64(heap_getattr(old_row, a_on_hand, desc, &isnull));
	if (delta == 0)
		return PointerGetDatum(new_row);

	sku = TextDatumGetCString(heap_getattr(new_row, a_sku, desc, &isnull));
	spi_state = checkout_spi_connect();
	store_stock_table_lock();
	n = store_stripes_rowlock_all(sku, &rows);
	if (n > 0)
	{
		int	  columns[2] = {a_on_hand, a_reserved};
		Datum values[2];
		bool  nulls[2] = {false, false};

		store_stripes_totals(rows, n, &on_hand, &reserved);
		if (on_hand + delta < reserved)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg(
						 "new row for relation \"inventory\" violates check constraint \"inventory_reserved_within_on_hand\""),
					 errdetail("Sku %s has " INT64_FORMAT
							   " units on hand and " INT64_FORMAT
							   " reserved; on_hand cannot change by " INT64_FORMAT
							   ".",
							   quote_user_text(sku), on_hand, reserved,
							   delta)));
		spread(rows, n, on_hand + delta - reserved);
		store_stripes_set_on_hand(sku, rows, n);
		values[0] = Int64GetDatum(on_hand + delta);
		values[1] = Int64GetDatum(reserved);
		new_row = heap_modify_tuple_by_cols(new_row, desc, 2, columns, values,
											nulls);
	}
	checkout_spi_finish(spi_state);
	return PointerGetDatum(new_row);
}
