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
#include "rowwrite.h"
#include "stock.h"
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
	{PHASE_NONE, NULL, PAYLOAD_NONE, NULL, NULL},
	{PHASE_CART_VALIDATION, "cart_validation", PAYLOAD_NONE,
	run_cart_validation, NULL},
	{PHASE_INVENTORY_RESERVATION, "inventory_reservation", PAYLOAD_NONE,
	run_inventory_reservation, compensate_reservation},
	/* price snapshots stay as the audit trail: nothing to undo */
	{PHASE_PRICE_LOCK, "price_lock", PAYLOAD_NONE,
	run_price_lock, NULL},
	{PHASE_PAYMENT_AUTHORIZATION, "payment_authorization", PAYLOAD_PAYMENT,
	run_payment_authorization, compensate_authorization},
	{PHASE_ORDER_CREATION, "order_creation", PAYLOAD_OPTIONAL,
	run_order_creation, compensate_order},
	{PHASE_PAYMENT_CAPTURE, "payment_capture", PAYLOAD_PAYMENT,
	run_payment_capture, compensate_capture},
	/* after stock_commit the lock is completed: never rolled back */
	{PHASE_STOCK_COMMIT, "stock_commit", PAYLOAD_NONE,
	run_stock_commit, NULL},
};

StaticAssertDecl(lengthof(phase_table) == PHASE_LAST + 1, "one phase_table entry per phase");

const PhaseDef *
phase_def(CheckoutPhase phase)
{
	Assert(phase > PHASE_NONE && phase <= PHASE_LAST);
	return &phase_table[phase];
}

const char *
phase_name(CheckoutPhase phase)
{
	return phase_def(phase)->name;
}

CheckoutPhase
phase_from_name(const char *name)
{
	int			p;

	for (p = PHASE_NONE + 1; p <= PHASE_LAST; p++)
		if (strcmp(phase_table[p].name, name) == 0)
			return (CheckoutPhase) p;
	elog(ERROR, "unknown checkout phase \"%s\"", name);
	pg_unreachable();
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
	if (!stock_first_unknown_line(ctx->lock->lock_id, &line_id, &sku))
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

/*
 * The price snapshots of the cart's lines: written without a statement
 * (rowwrite.c) unless the table runs code a user added.
 */
static void
price_snapshots_write(int64 lock_id, const CartStock *cart, const LineDrift *drifts)
{
	static Statement snapshot = {
		.sql = "INSERT INTO checkout.price_snapshots "
		"  (lock_id, line_id, sku, quantity, cart_price, locked_price, drift_percent) "
		"SELECT $1, t.line_id, t.sku, t.q, t.cart_price, t.price, t.drift "
		"FROM ROWS FROM (pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[]), "
		"                pg_catalog.unnest($4::int8[]), pg_catalog.unnest($5::int8[]), "
		"                pg_catalog.unnest($6::int8[]), pg_catalog.unnest($7::numeric[])) "
		"     AS t(line_id, sku, q, cart_price, price, drift)",
		.nargs = 7,
		.argtypes = {INT8OID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
		NUMERICARRAYOID},
		.generic = true,
	};
	RowWrite	w;
	int			i;

	if (row_write_begin(&w, "price_snapshots"))
	{
		const char *names[7] = {"lock_id", "line_id", "sku", "quantity", "cart_price",
		"locked_price", "drift_percent"};
		int			columns[7];

		for (i = 0; i < 7; i++)
			columns[i] = row_attnum(&w, names[i]);
		for (i = 0; i < cart->n_found; i++)
		{
			Datum		values[7];
			bool		isnull[7] = {false, false, false, false, false, false, false};

			CHECK_FOR_INTERRUPTS();
			values[0] = Int64GetDatum(lock_id);
			values[1] = CStringGetTextDatum(cart->line_ids[i]);
			values[2] = CStringGetTextDatum(cart->skus[i]);
			values[3] = Int64GetDatum(cart->quantities[i]);
			values[4] = Int64GetDatum(cart->cart_prices[i]);
			values[5] = Int64GetDatum(cart->unit_prices[i]);
			values[6] = drifts[i].percent;
			isnull[6] = drifts[i].unbounded;
			row_insert(&w, columns, values, isnull, 7);
		}
		row_write_end(&w);
	}
	else
	{
		Datum		values[7];
		Datum	   *percents = palloc(sizeof(Datum) * Max(cart->n_found, 1));
		bool	   *unbounded = palloc(sizeof(bool) * Max(cart->n_found, 1));
		int			dims[1] = {cart->n_found};
		int			lbs[1] = {1};

		for (i = 0; i < cart->n_found; i++)
		{
			percents[i] = drifts[i].percent;
			unbounded[i] = drifts[i].unbounded;
		}
		values[0] = Int64GetDatum(lock_id);
		values[1] = text_array(cart->line_ids, cart->n_found);
		values[2] = text_array(cart->skus, cart->n_found);
		values[3] = int8_array(cart->quantities, cart->n_found);
		values[4] = int8_array(cart->cart_prices, cart->n_found);
		values[5] = int8_array(cart->unit_prices, cart->n_found);
		values[6] = PointerGetDatum(construct_md_array(percents, unbounded, 1, dims, lbs,
													   NUMERICOID, -1, false, TYPALIGN_INT));
		stmt_exec(&snapshot, values, NULL, false);
	}
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

/*
 * Takes back the price snapshots of a late reservation that must decide
 * again.  A lock has snapshots only from its price_lock phase, and a late
 * reservation runs only before it, so all of the lock's are this call's.
 */
void
price_snapshots_forget(int64 lock_id)
{
	static Statement forget = {
		.sql = "DELETE FROM checkout.price_snapshots WHERE lock_id = $1",
		.nargs = 1,
		.argtypes = {INT8OID},
		.generic = true,
	};
	Datum		values[1] = {Int64GetDatum(lock_id)};

	stmt_exec(&forget, values, NULL, false);
}

/* ---- payments ---- */

enum
{
	CO_COMPENSATION_ID, CO_LOCK_ID
};

/*
 * Records voids or refunds the application must make at its gateway, one per
 * lock (references[i] / amounts[i] for locks[i]), and tells it: a NOTIFY
 * naming the compensation row, and `event` in the log.
 */
static void
record_compensations(LockRow *const *locks, char *const *references, const int64 *amounts,
					 int n, const char *kind, EventKind event, const char *step)
{
	static Statement insert = {
		.sql = "INSERT INTO checkout.compensations (lock_id, kind, reference, amount) "
		"SELECT t.lock_id, $2, t.reference, t.amount "
		"FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::int8[])) AS t(lock_id, reference, amount) "
		"RETURNING compensation_id, lock_id",
		.nargs = 4,
		.argtypes = {INT8ARRAYOID, TEXTOID, TEXTARRAYOID, INT8ARRAYOID},
		.generic = true,
		.columns = {"compensation_id", "lock_id"},
	};
	Datum		values[4];
	SPITupleTable *tt;
	LockRow   **sorted;
	int			rows;
	int			i;

	values[0] = lock_id_array(locks, n);
	values[1] = CStringGetTextDatum(kind);
	values[2] = text_array(references, n);
	values[3] = int8_array(amounts, n);
	rows = stmt_exec(&insert, values, NULL, false);
	tt = SPI_tuptable;
	if (!event_wanted(event))
		return;
	sorted = locks_sorted_by_id(locks, n);
	for (i = 0; i < rows; i++)
	{
		LockRow    *lock = locks_find(sorted, n, stmt_int8(&insert, tt, i, CO_LOCK_ID));
		int			k;
		CheckoutEvent ev;

		CHECK_FOR_INTERRUPTS();
		for (k = 0; locks[k] != lock; k++)
			;
		event_begin(&ev, event, lock->lock_id, lock->cart_id);
		if (step)
			event_add_text(&ev, "step", step);
		event_notify_compensation(&ev, kind, stmt_int8(&insert, tt, i, CO_COMPENSATION_ID));
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
	static Statement insert = {
		.sql = "INSERT INTO checkout.payment_metadata (lock_id, phase, metadata) "
		"VALUES ($1, $2::checkout.phase, $3::pg_catalog.jsonb)",
		.nargs = 3,
		.argtypes = {INT8OID, TEXTOID, TEXTOID},
		.generic = true,
	};
	Datum		values[3];

	if (ctx->payment->metadata == NULL)
		return;
	values[0] = Int64GetDatum(ctx->lock->lock_id);
	values[1] = CStringGetTextDatum(phase_name(phase));
	values[2] = CStringGetTextDatum(ctx->payment->metadata);
	stmt_exec(&insert, values, NULL, false);
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

/*
 * The order written without a statement (rowwrite.c); false, with nothing
 * written, when the table runs code a user added.  ON CONFLICT's answer is
 * read first: an order_ref in use is KC020, as the statement says it; only
 * the same text inserted by a concurrent transaction at that moment (another
 * checkout's own order_ref equal to this generated one) would be 23505.
 */
static bool
order_insert_direct(const LockRow *lock, const char *order_ref, bool own)
{
	const char *names[5] = {"order_ref", "lock_id", "cart_id", "total", "source"};
	KeyAccess	ka;
	RowWrite	w;
	int			columns[5];
	Datum		values[5];
	bool		isnull[5] = {false, false, false, false, false};
	bool		taken;
	int			i;

	key_open(&ka, "orders", AccessShareLock);
	taken = key_find(&ka, key_attnum(&ka, "order_ref"), F_TEXTEQ, CStringGetTextDatum(order_ref));
	key_close(&ka);
	if (taken)
		raise_order_ref_taken(order_ref);
	if (!row_write_begin(&w, "orders"))
		return false;
	for (i = 0; i < 5; i++)
		columns[i] = row_attnum(&w, names[i]);
	values[0] = CStringGetTextDatum(order_ref);
	values[1] = Int64GetDatum(lock->lock_id);
	values[2] = CStringGetTextDatum(lock->cart_id);
	values[3] = Int64GetDatum(lock->total);
	values[4] = CStringGetTextDatum(own ? "application" : "checkout");
	row_insert(&w, columns, values, isnull, 5);
	row_write_end(&w);
	return true;
}

static bool
run_order_creation(PhaseContext *ctx)
{
	static Statement insert = {
		.sql = "INSERT INTO checkout.orders (order_ref, lock_id, cart_id, total, source) "
		"VALUES ($2, $1, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING order_ref",
		.nargs = 5,
		.argtypes = {INT8OID, TEXTOID, TEXTOID, INT8OID, TEXTOID},
		.generic = true,
	};
	LockRow    *lock = ctx->lock;
	bool		own = ctx->order_ref != NULL;
	char	   *order_ref = own ? ctx->order_ref : psprintf("CO-" INT64_FORMAT, lock->lock_id);
	Datum		values[5];

	/*
	 * The application's own order_ref goes by the statement, whose ON
	 * CONFLICT answers KC020 also to a concurrent insert of the same one
	 */
	if (!own && order_insert_direct(lock, order_ref, own))
	{
		lock->order_ref = order_ref;
		return true;
	}
	values[0] = Int64GetDatum(lock->lock_id);
	values[1] = CStringGetTextDatum(order_ref);
	values[2] = CStringGetTextDatum(lock->cart_id);
	values[3] = Int64GetDatum(lock->total);
	values[4] = CStringGetTextDatum(own ? "application" : "checkout");
	if (stmt_exec(&insert, values, NULL, false) == 0)
		raise_order_ref_taken(order_ref);
	lock->order_ref = order_ref;
	return true;
}

static void
compensate_order(LockRow *const *locks, int n)
{
	static Statement cancel = {
		.sql = "UPDATE checkout.orders o SET status = 'cancelled', cancelled_at = pg_catalog.now() "
		"WHERE o.lock_id = ANY ($1) AND o.status = 'created' "
		"RETURNING o.lock_id, o.order_ref",
		.nargs = 1,
		.argtypes = {INT8ARRAYOID},
		.columns = {"lock_id", "order_ref"},
	};
	Datum		values[1] = {lock_id_array(locks, n)};
	SPITupleTable *tt;
	LockRow   **sorted;
	int			rows;
	int			i;

	rows = stmt_exec(&cancel, values, NULL, false);
	tt = SPI_tuptable;
	if (rows == 0 || !event_wanted(EV_ROLLBACK_STEP))
		return;
	sorted = locks_sorted_by_id(locks, n);
	for (i = 0; i < rows; i++)
	{
		int64		lock_id = stmt_int8(&cancel, tt, i, 0);
		LockRow    *lock = locks_find(sorted, n, lock_id);
		CheckoutEvent ev;

		event_begin(&ev, EV_ROLLBACK_STEP, lock_id, lock ? lock->cart_id : NULL);
		event_add_text(&ev, "step", "order_cancelled");
		event_add_text(&ev, "order_ref", stmt_text(&cancel, tt, i, 1));
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
