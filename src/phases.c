/*
 * phases.c — the phase state machine: one table of phases (name, payload
 * need, run function, compensation) drives checkout_advance forwards and the
 * rollback of lifecycle.c backwards.
 *
 * No phase runs in a subtransaction: each decides a business failure (unknown
 * sku, shortfall, drift, amount mismatch) from reads made under the row locks
 * before it writes anything, and records only its audit trail when it fails.
 * So a failure has nothing of its own to undo, earlier phases are compensated
 * by lifecycle.c, and checkout_advance returns the failed row rather than
 * raising.  Anything else (bad payload, overflow, a real error) raises, and
 * the whole call changes nothing.
 *
 * Run functions record their results in the LockRow; lifecycle.c writes the
 * row once per call.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/numeric.h"

#include "events.h"
#include "phases.h"
#include "stock.h"
#include "store.h"
#include "util.h"

static bool run_cart_validation(PhaseContext *ctx);
static bool run_inventory_reservation(PhaseContext *ctx);
static bool run_price_lock(PhaseContext *ctx);
static bool run_payment_authorization(PhaseContext *ctx);
static bool run_order_creation(PhaseContext *ctx);
static bool run_payment_capture(PhaseContext *ctx);
static bool run_stock_commit(PhaseContext *ctx);
static void compensate_reservation(LockRow *const *locks, int n);
static void compensate_authorization(LockRow *const *locks, int n);
static void compensate_order(LockRow *const *locks, int n);
static void compensate_capture(LockRow *const *locks, int n);

static const PhaseDef phase_table[] = {
	{PHASE_NONE, PAYLOAD_NONE, NULL, NULL},
	{PHASE_CART_VALIDATION, PAYLOAD_NONE, run_cart_validation, NULL},
	{PHASE_INVENTORY_RESERVATION, PAYLOAD_NONE, run_inventory_reservation, compensate_reservation},
	/* price snapshots stay as the audit trail: nothing to undo */
	{PHASE_PRICE_LOCK, PAYLOAD_NONE, run_price_lock, NULL},
	{PHASE_PAYMENT_AUTHORIZATION, PAYLOAD_PAYMENT, run_payment_authorization,
	compensate_authorization},
	{PHASE_ORDER_CREATION, PAYLOAD_OPTIONAL, run_order_creation, compensate_order},
	{PHASE_PAYMENT_CAPTURE, PAYLOAD_PAYMENT, run_payment_capture, compensate_capture},
	/* after stock_commit the lock is completed: never rolled back */
	{PHASE_STOCK_COMMIT, PAYLOAD_NONE, run_stock_commit, NULL},
};

StaticAssertDecl(lengthof(phase_table) == PHASE_LAST + 1, "one phase_table entry per phase");

const PhaseDef *
phase_def(CheckoutPhase phase)
{
	Assert(phase > PHASE_NONE && phase <= PHASE_LAST);
	return &phase_table[phase];
}

void
phase_completed_event(const LockRow *lock, CheckoutPhase phase)
{
	CheckoutEvent ev;

	if (!event_wanted(EV_PHASE_COMPLETED))
		return;
	event_begin(&ev, EV_PHASE_COMPLETED, lock->lock_id, lock->cart_id);
	event_add_text(&ev, "phase", phase_name(phase));
	if (lock->has_total)
		event_add_int(&ev, "total", lock->total);
	if (phase == PHASE_ORDER_CREATION)
		event_add_text(&ev, "order_ref", lock->order_ref);
	event_emit(&ev);
}

static bool
business_failure(PhaseContext *ctx, const char *code, const char *fmt,...)
	pg_attribute_printf(3, 4);

static bool
business_failure(PhaseContext *ctx, const char *code, const char *fmt,...)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	ctx->error_code = code;
	ctx->error_message = buf.data;
	return false;
}

/* The cart's lines and stock rows, locked in sku order (read when late), once per call. */
static CartStock *
cart_stock(PhaseContext *ctx)
{
	if (ctx->cart == NULL)
	{
		ctx->cart = palloc(sizeof(CartStock));
		stock_load_cart(ctx->lock->lock_id, ctx->cart, ctx->late == NULL);
	}
	return ctx->cart;
}

static bool
all_skus_known(PhaseContext *ctx)
{
	CartStock  *cart = cart_stock(ctx);

	return cart->n_found > 0 && cart->n_found == cart->n_lines;
}

/* ---- the phases ---- */

static bool
run_cart_validation(PhaseContext *ctx)
{
	char	   *line_id;
	char	   *sku;

	if (all_skus_known(ctx))
		return true;
	if (!store_first_unknown_line(ctx->lock->lock_id, &line_id, &sku))
		elog(ERROR, "checkout lock " INT64_FORMAT " has no cart lines", ctx->lock->lock_id);
	return business_failure(ctx, CHECKOUT_INVALID_CART, "unknown sku %s on line %s",
							quote_user_text(sku), quote_user_text(line_id));
}

static bool
run_inventory_reservation(PhaseContext *ctx)
{
	StockShortfall shortfall;

	if (!all_skus_known(ctx))
		return business_failure(ctx, CHECKOUT_INVALID_CART,
								"a sku of the cart is no longer in the inventory");
	if (stock_reserve(ctx->lock, ctx->cart, &shortfall, ctx->late))
		return true;
	/* a late reservation that met a striped sku: decided again, rows taken in order */
	if (shortfall.sku == NULL)
	{
		Assert(ctx->late != NULL);
		return false;
	}
	return business_failure(ctx, CHECKOUT_INSUFFICIENT_STOCK,
							"insufficient stock for sku %s: wanted " INT64_FORMAT
							", available " INT64_FORMAT,
							quote_user_text(shortfall.sku), shortfall.wanted, shortfall.available);
}

/* A line's drift from its cart price to its current one. */
typedef struct LineDrift
{
	bool		unbounded;		/* the cart said 0 and the price is now positive */
	Datum		percent;		/* numeric: |price - cart_price| * 100 / cart_price */
	char	   *rounded;		/* to 4 places, as text; NULL when unbounded */
	bool		exceeds;		/* unbounded or beyond the tolerance */
	bool		drifted;		/* not 0 */
} LineDrift;

/*
 * The drift of a line, computed as the SQL expression
 * abs(price::numeric - cart_price) * 100 / cart_price would be (the same
 * numeric functions), compared with the tolerance (tolerance::numeric).
 */
static void
line_drift(int64 cart_price, int64 price, Datum tolerance, LineDrift *d)
{
	Datum		zero = DirectFunctionCall1(int8_numeric, Int64GetDatum(0));
	Datum		cart = DirectFunctionCall1(int8_numeric, Int64GetDatum(cart_price));

	d->unbounded = cart_price == 0 && price != 0;
	if (d->unbounded)
	{
		d->percent = (Datum) 0;
		d->rounded = NULL;
		d->exceeds = true;
		d->drifted = true;
		return;
	}
	if (cart_price == 0)
		d->percent = zero;
	else
	{
		Datum		current = DirectFunctionCall1(int8_numeric, Int64GetDatum(price));
		Datum		change = DirectFunctionCall2(numeric_sub, current, cart);

		change = DirectFunctionCall2(numeric_mul, DirectFunctionCall1(numeric_abs, change),
									 DirectFunctionCall1(int4_numeric, Int32GetDatum(100)));
		d->percent = DirectFunctionCall2(numeric_div, change, cart);
	}
	d->rounded = DatumGetCString(DirectFunctionCall1(numeric_out,
													 DirectFunctionCall2(numeric_round, d->percent,
																		 Int32GetDatum(4))));
	d->exceeds = DatumGetBool(DirectFunctionCall2(numeric_gt, d->percent, tolerance));
	d->drifted = DatumGetBool(DirectFunctionCall2(numeric_ne, d->percent, zero));
}

/* The price snapshots of the cart's lines, with their drift. */
static void
price_snapshots_write(int64 lock_id, const CartStock *cart, const LineDrift *drifts)
{
	Datum	   *percents = palloc(sizeof(Datum) * Max(cart->n_found, 1));
	bool	   *unbounded = palloc(sizeof(bool) * Max(cart->n_found, 1));
	int			i;

	for (i = 0; i < cart->n_found; i++)
	{
		percents[i] = drifts[i].percent;
		unbounded[i] = drifts[i].unbounded;
	}
	store_snapshots_insert(lock_id, cart->n_found, cart->line_ids, cart->skus, cart->quantities,
						   cart->cart_prices, cart->unit_prices, percents, unbounded);
}

/*
 * Snapshots every line's current price (kept, also when the phase fails: it
 * is the audit trail of the refusal), then checks the drift and totals.
 */
static bool
run_price_lock(PhaseContext *ctx)
{
	CartStock  *cart;
	LineDrift  *drifts;
	Datum		tolerance;
	int64		total = 0;
	int			worst = -1;		/* the exceeding line reported: smallest line_id */
	int			n;
	int			i;

	if (!all_skus_known(ctx))
		return business_failure(ctx, CHECKOUT_INVALID_CART,
								"a sku of the cart is no longer in the inventory");
	cart = ctx->cart;
	n = cart->n_found;
	drifts = palloc(sizeof(LineDrift) * Max(n, 1));
	tolerance = DirectFunctionCall1(float8_numeric, Float8GetDatum(checkout_price_drift_tolerance));
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		line_drift(cart->cart_prices[i], cart->unit_prices[i], tolerance, &drifts[i]);
	}
	price_snapshots_write(ctx->lock->lock_id, cart, drifts);

	for (i = 0; i < n; i++)
		if (drifts[i].exceeds &&
			(worst < 0 || strcmp(cart->line_ids[i], cart->line_ids[worst]) < 0))
			worst = i;
	if (worst >= 0)
		return business_failure(ctx, CHECKOUT_PRICE_DRIFT,
								"price of sku %s (line %s) changed from " INT64_FORMAT
								" to " INT64_FORMAT ": drift %s%% exceeds the tolerance of %g%%",
								quote_user_text(cart->skus[worst]), quote_user_text(cart->line_ids[worst]),
								cart->cart_prices[worst], cart->unit_prices[worst],
								drifts[worst].rounded ? drifts[worst].rounded : "unbounded",
								checkout_price_drift_tolerance);

	for (i = 0; i < n; i++)
	{
		int64		line_total;

		if (pg_mul_s64_overflow(cart->unit_prices[i], cart->quantities[i], &line_total) ||
			pg_add_s64_overflow(total, line_total, &total))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("checkout total is out of range for type bigint"),
					 errdetail("Lock " INT64_FORMAT ", line %s.", ctx->lock->lock_id,
							   quote_user_text(cart->line_ids[i]))));
	}
	ctx->lock->total = total;
	ctx->lock->has_total = true;

	if (event_wanted(EV_PRICE_DRIFT))
	{
		/* one warning per drifted line, in line_id order */
		bool	   *done = palloc0(sizeof(bool) * Max(n, 1));
		int			k;

		for (k = 0; k < n; k++)
		{
			int			next = -1;
			CheckoutEvent ev;

			for (i = 0; i < n; i++)
				if (!done[i] && drifts[i].drifted &&
					(next < 0 || strcmp(cart->line_ids[i], cart->line_ids[next]) < 0))
					next = i;
			if (next < 0)
				break;
			done[next] = true;
			event_begin(&ev, EV_PRICE_DRIFT, ctx->lock->lock_id, ctx->lock->cart_id);
			event_add_text(&ev, "sku", cart->skus[next]);
			event_add_text(&ev, "line_id", cart->line_ids[next]);
			event_add_int(&ev, "cart_price", cart->cart_prices[next]);
			event_add_int(&ev, "current_price", cart->unit_prices[next]);
			event_add_raw(&ev, "drift_percent", drifts[next].rounded);
			event_emit(&ev);
		}
	}
	if (event_wanted(EV_PRICE_LOCKED))
	{
		CheckoutEvent ev;

		event_begin(&ev, EV_PRICE_LOCKED, ctx->lock->lock_id, ctx->lock->cart_id);
		event_add_int(&ev, "total", total);
		event_add_int(&ev, "lines", n);
		event_emit(&ev);
	}
	return true;
}

/* ---- payments ---- */

/*
 * Records voids or refunds the application must make at its gateway, one per
 * lock (references[i] / amounts[i] for locks[i]), and tells it: a NOTIFY
 * naming the compensation row, and `event` in the log.
 */
static void
record_compensations(LockRow *const *locks, char *const *references, const int64 *amounts,
					 int n, const char *kind, EventKind event, const char *step)
{
	int64	   *compensation_ids;
	int64	   *for_lock_ids;
	int			rows = store_compensations_insert(lock_ids_of(locks, n), kind, references, amounts,
												  n, &compensation_ids, &for_lock_ids);
	LockRow   **sorted;
	int			i;

	if (!event_wanted(event))
		return;
	sorted = locks_sorted_by_id(locks, n);
	for (i = 0; i < rows; i++)
	{
		LockRow    *lock = locks_find(sorted, n, for_lock_ids[i]);
		int			k;
		CheckoutEvent ev;

		CHECK_FOR_INTERRUPTS();
		for (k = 0; locks[k] != lock; k++)
			;
		event_begin(&ev, event, lock->lock_id, lock->cart_id);
		if (step)
			event_add_text(&ev, "step", step);
		event_notify_compensation(&ev, kind, compensation_ids[i]);
		event_add_text(&ev, "reference", references[k]);
		event_add_int(&ev, "amount", amounts[k]);
		event_emit(&ev);
	}
}

/*
 * A payment the gateway holds but this lock refuses (amount mismatch): the
 * application must still void or refund it, so it is recorded before the
 * phase fails.
 */
static bool
refuse_payment(PhaseContext *ctx, const char *kind, const char *what, int64 expected)
{
	LockRow    *locks[1] = {ctx->lock};

	record_compensations(locks, &ctx->payment->reference, &ctx->payment->amount, 1,
						 kind, EV_PAYMENT_REFUSED, NULL);
	return business_failure(ctx, CHECKOUT_PAYMENT_MISMATCH,
							"%s amount " INT64_FORMAT " (reference %s) does not match " INT64_FORMAT,
							what, ctx->payment->amount, quote_user_text(ctx->payment->reference),
							expected);
}

/* The application's gateway data for a payment, kept beside the lock. */
static void
store_payment_metadata(PhaseContext *ctx, CheckoutPhase phase)
{
	if (ctx->payment->metadata != NULL)
		store_payment_metadata_insert(ctx->lock->lock_id, phase, ctx->payment->metadata);
}

static bool
run_payment_authorization(PhaseContext *ctx)
{
	LockRow    *lock = ctx->lock;

	if (!lock->has_total || ctx->payment->amount != lock->total)
		return refuse_payment(ctx, "void_required", "authorised", lock->total);
	lock->auth_reference = ctx->payment->reference;
	lock->auth_amount = ctx->payment->amount;
	store_payment_metadata(ctx, PHASE_PAYMENT_AUTHORIZATION);
	return true;
}

static bool
run_payment_capture(PhaseContext *ctx)
{
	LockRow    *lock = ctx->lock;

	if (lock->auth_reference == NULL || ctx->payment->amount != lock->auth_amount)
		return refuse_payment(ctx, "refund_required", "captured", lock->auth_amount);
	lock->capture_reference = ctx->payment->reference;
	lock->capture_amount = ctx->payment->amount;
	store_payment_metadata(ctx, PHASE_PAYMENT_CAPTURE);
	return true;
}

/* a captured authorisation is not voided: the refund covers it */
static void
compensate_payments(LockRow *const *locks, int n, bool captured)
{
	LockRow   **owed = palloc(sizeof(LockRow *) * n);
	char	  **references = palloc(sizeof(char *) * n);
	int64	   *amounts = palloc(sizeof(int64) * n);
	int			m = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (captured ? locks[i]->capture_reference == NULL
			: (locks[i]->auth_reference == NULL || locks[i]->capture_reference != NULL))
			continue;
		owed[m] = locks[i];
		references[m] = captured ? locks[i]->capture_reference : locks[i]->auth_reference;
		amounts[m] = captured ? locks[i]->capture_amount : locks[i]->auth_amount;
		m++;
	}
	if (m > 0)
		record_compensations(owed, references, amounts, m,
							 captured ? "refund_required" : "void_required",
							 EV_ROLLBACK_STEP, captured ? "refund_capture" : "void_authorization");
}

static void
compensate_authorization(LockRow *const *locks, int n)
{
	compensate_payments(locks, n, false);
}

static void
compensate_capture(LockRow *const *locks, int n)
{
	compensate_payments(locks, n, true);
}

/* ---- orders ---- */

static void
raise_order_ref_taken(const char *order_ref)
{
	ereport(ERROR,
			(errcode(ERRCODE_CHECKOUT_PAYLOAD_REQUIRED),
			 errmsg("order_ref %s is already used by another checkout", quote_user_text(order_ref)),
			 errhint("Pass a unique order_ref, or none to let checkout create the order.")));
}

static bool
run_order_creation(PhaseContext *ctx)
{
	LockRow    *lock = ctx->lock;
	bool		own = ctx->order_ref != NULL;
	char	   *order_ref = own ? ctx->order_ref : psprintf("CO-" INT64_FORMAT, lock->lock_id);

	if (!store_order_insert(lock->lock_id, lock->cart_id, lock->total, order_ref, own))
		raise_order_ref_taken(order_ref);
	lock->order_ref = order_ref;
	return true;
}

static void
compensate_order(LockRow *const *locks, int n)
{
	int64	   *lock_ids;
	char	  **order_refs;
	int			rows = store_orders_cancel(lock_ids_of(locks, n), n, &lock_ids, &order_refs);
	LockRow   **sorted;
	int			i;

	if (rows == 0 || !event_wanted(EV_ROLLBACK_STEP))
		return;
	sorted = locks_sorted_by_id(locks, n);
	for (i = 0; i < rows; i++)
	{
		LockRow    *lock = locks_find(sorted, n, lock_ids[i]);
		CheckoutEvent ev;

		event_begin(&ev, EV_ROLLBACK_STEP, lock_ids[i], lock ? lock->cart_id : NULL);
		event_add_text(&ev, "step", "order_cancelled");
		event_add_text(&ev, "order_ref", order_refs[i]);
		event_emit(&ev);
	}
}

/* ---- stock ---- */

static void
compensate_reservation(LockRow *const *locks, int n)
{
	stock_release(locks, n);
}

static bool
run_stock_commit(PhaseContext *ctx)
{
	stock_commit(&ctx->lock, 1);
	return true;
}
