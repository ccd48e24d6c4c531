/*
 * protect.c — checkout.protect_cart(column): a BEFORE ROW trigger for the
 * application's cart-lines table that rejects changes (KC030) to a cart while
 * it has a live checkout lock, so the cart cannot change under a checkout.
 * An overdue lock no longer protects: it is as good as expired.  The message
 * names the cart, not the lock: a lock id is what a session proves its
 * ownership with, next to its session id.
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "errors.h"
#include "settings.h"
#include "store.h"
#include "util.h"

PG_FUNCTION_INFO_V1(checkout_protect_cart);

static void
reject_if_cart_locked(Relation rel, HeapTuple tuple, int attnum)
{
	char *cart_id = SPI_getvalue(tuple, RelationGetDescr(rel), attnum);

	if (cart_id == NULL)
		return;
	if (store_cart_has_live_lock(cart_id))
		ereport(ERROR,
				(errcode(ERRCODE_CHECKOUT_CART_LOCKED),
				 errmsg("cart %s is locked by a checkout in progress",
						quote_user_text(cart_id)),
				 errdetail("Rows of %s cannot change while the cart is being checked out.",
						   quote_identifier(RelationGetRelationName(rel))),
				 errhint("Cancel the checkout or wait for it to finish.")));
}

Datum
checkout_protect_cart(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;
	Relation	 rel;
	int			 attnum;
	HeapTuple	 result;
	int			 spi_state;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg(
					 "checkout.protect_cart() must be called as a trigger")));
	event = trigdata->tg_event;
	rel = trigdata->tg_relation;
	if (!TRIGGER_FIRED_FOR_ROW(event) || !TRIGGER_FIRED_BEFORE(event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg(
					 "checkout.protect_cart() must be a BEFORE ... FOR EACH ROW trigger")));
	if (trigdata->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(
					 "checkout.protect_cart() takes the cart id column's name as its one argument")));

	attnum = SPI_fnumber(RelationGetDescr(rel),
						 trigdata->tg_trigger->tgargs[0]);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column %s of relation %s does not exist",
						quote_user_text(trigdata->tg_trigger->tgargs[0]),
						quote_user_text(RelationGetRelationName(rel)))));

	result = TRIGGER_FIRED_BY_UPDATE(event) ? trigdata->tg_newtuple
											: trigdata->tg_trigtuple;
	if (!checkout_cart_protection)
		return PointerGetDatum(result);

	spi_state = checkout_spi_connect();
	/* an UPDATE may move a line between carts: both must be free */
	reject_if_cart_locked(rel, trigdata->tg_trigtuple, attnum);
	if (TRIGGER_FIRED_BY_UPDATE(event))
		reject_if_cart_locked(rel, trigdata->tg_newtuple, attnum);
	checkout_spi_finish(spi_state);
	return PointerGetDatum(result);
}
