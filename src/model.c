/*
 * model.c — the names of the phases and lock states, as their SQL enums
 * spell them.
 */
#include "postgres.h"

#include "model.h"

static const char *const phase_names[] = {
	[PHASE_CART_VALIDATION] = "cart_validation",
	[PHASE_INVENTORY_RESERVATION] = "inventory_reservation",
	[PHASE_PRICE_LOCK] = "price_lock",
	[PHASE_PAYMENT_AUTHORIZATION] = "payment_authorization",
	[PHASE_ORDER_CREATION] = "order_creation",
	[PHASE_PAYMENT_CAPTURE] = "payment_capture",
	[PHASE_STOCK_COMMIT] = "stock_commit",
};

StaticAssertDecl(lengthof(phase_names) == PHASE_LAST + 1,
				 "one name per phase");

static const char *const lock_state_names[] = {
	[LOCK_ACTIVE] = "active",		[LOCK_COMPLETED] = "completed",
	[LOCK_FAILED] = "failed",		[LOCK_EXPIRED] = "expired",
	[LOCK_CANCELLED] = "cancelled",
};

const char *
phase_name(CheckoutPhase phase)
{
	Assert(phase > PHASE_NONE && phase <= PHASE_LAST);
	return phase_names[phase];
}

CheckoutPhase
phase_from_name(const char *name)
{
	int p;

	for (p = PHASE_NONE + 1; p <= PHASE_LAST; p++)
		if (strcmp(phase_names[p], name) == 0)
			return (CheckoutPhase) p;
	elog(ERROR, "unknown checkout phase \"%s\"", name);
	pg_unreachable();
}

const char *
lock_state_name(LockState state)
{
	return lock_state_names[state];
}

LockState
lock_state_from_name(const char *name)
{
	int s;

	for (s = 0; s < lengthof(lock_state_names); s++)
		if (strcmp(lock_state_names[s], name) == 0)
			return (LockState) s;
	elog(ERROR, "unknown checkout lock state \"%s\"", name);
	pg_unreachable();
}
