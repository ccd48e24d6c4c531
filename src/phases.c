/*
 * phases.c — the phase state machine: one table of phases (name, payload
 * need, run function, compensation) drives checkout_advance, and is walked
 * backwards by rollback.c.
 *
 * A phase runs inside an internal subtransaction.  A business failure
 * (unknown sku, shortfall, drift, amount mismatch) is reported by the run
 * function returning false: its subtransaction is rolled back, so the phase's
 * own partial work disappears, then the lock's earlier phases are compensated
 * and the lock is recorded as failed — and checkout_advance returns that row
 * rather than raising, so the record survives.  Anything else (bad payload,
 * overflow, a real error) raises, and the whole call changes nothing.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "checkout.h"

PG_FUNCTION_INFO_V1(checkout_advance);
PG_FUNCTION_INFO_V1(checkout_fail);

typedef enum PayloadNeed
{
	PAYLOAD_NONE,				/* ignores the payload */
	PAYLOAD_OPTIONAL,			/* order_creation: {"order_ref"} or nothing */
	PAYLOAD_PAYMENT				/* needs {"reference", "amount"} */
} PayloadNeed;

typedef struct PaymentPayload
{
	char	   *reference;
	int64		amount;
} PaymentPayload;

typedef struct PhaseContext
{
	LockRow    *lock;
	PaymentPayload *payment;	/* NULL when absent or already used this call */
	char	   *order_ref;		/* the application's own order, or NULL */
	/* set by a run function that returns false */
	const char *error_code;
	char	   *error_message;
	/* a payment the gateway holds that this lock refused */
	const char *refused_kind;
	PaymentPayload refused;
} PhaseContext;

typedef struct PhaseDef
{
	CheckoutPhase phase;
	const char *name;
	PayloadNeed payload;
	bool		(*run) (PhaseContext *ctx);
	PhaseRollbackFn rollback;	/* NULL: nothing to undo */
} PhaseDef;

static bool run_cart_validation(PhaseContext *ctx);
static bool run_inventory_reservation(PhaseContext *ctx);
static bool run_price_lock(PhaseContext *ctx);
static bool run_payment_authorization(PhaseContext *ctx);
static bool run_order_creation(PhaseContext *ctx);
static bool run_payment_capture(PhaseContext *ctx);
static bool run_stock_commit(PhaseContext *ctx);

static const PhaseDef phase_table[] = {
	{PHASE_NONE, NULL, PAYLOAD_NONE, NULL, NULL},
	{PHASE_CART_VALIDATION, "cart_validation", PAYLOAD_NONE, run_cart_validation, NULL},
	{PHASE_INVENTORY_RESERVATION, "inventory_reservation", PAYLOAD_NONE, run_inventory_reservation,
	rollback_release_reservations},
	/* price snapshots stay as the audit trail: nothing to undo */
	{PHASE_PRICE_LOCK, "price_lock", PAYLOAD_NONE, run_price_lock, NULL},
	{PHASE_PAYMENT_AUTHORIZATION, "payment_authorization", PAYLOAD_PAYMENT, run_payment_authorization,
	rollback_void_authorization},
	{PHASE_ORDER_CREATION, "order_creation", PAYLOAD_OPTIONAL, run_order_creation,
	rollback_cancel_order},
	{PHASE_PAYMENT_CAPTURE, "payment_capture", PAYLOAD_PAYMENT, run_payment_capture,
	rollback_refund_capture},
	{PHASE_STOCK_COMMIT, "stock_commit", PAYLOAD_NONE, run_stock_commit, NULL},
};

StaticAssertDecl(lengthof(phase_table) == PHASE_LAST + 1, "one phase_table entry per phase");

const char *
phase_name(CheckoutPhase phase)
{
	Assert(phase > PHASE_NONE && phase <= PHASE_LAST);
	return phase_table[phase].name;
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

PhaseRollbackFn
phase_rollback_fn(CheckoutPhase phase)
{
	return phase_table[phase].rollback;
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

/* ---- the phases ---- */

static bool
run_cart_validation(PhaseContext *ctx)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(ctx->lock->lock_id)};

	if (checkout_exec(&plan,
					  "SELECT l.line_id, l.sku FROM checkout.lock_lines l "
					  "WHERE l.lock_id = $1 AND NOT EXISTS "
					  "  (SELECT 1 FROM checkout.inventory i WHERE i.sku = l.sku) "
					  "ORDER BY l.line_no LIMIT 1",
					  1, types, values, NULL, false, 1) > 0)
		return business_failure(ctx, CHECKOUT_INVALID_CART,
								"unknown sku \"%s\" on line \"%s\"",
								checkout_text_cell(SPI_tuptable, 0, 2),
								checkout_text_cell(SPI_tuptable, 0, 1));
	return true;
}

static bool
run_inventory_reservation(PhaseContext *ctx)
{
	StockShortfall shortfall;

	if (stock_reserve(ctx->lock->lock_id, ctx->lock->cart_id, &shortfall))
		return true;
	if (shortfall.unknown_sku)
		return business_failure(ctx, CHECKOUT_INVALID_CART,
								"a sku of the cart is no longer in the inventory");
	return business_failure(ctx, CHECKOUT_INSUFFICIENT_STOCK,
							"insufficient stock for sku \"%s\": wanted " INT64_FORMAT
							", available " INT64_FORMAT,
							shortfall.sku, shortfall.wanted, shortfall.available);
}

static bool
run_price_lock(PhaseContext *ctx)
{
	static SPIPlanPtr count_plan = NULL;
	static SPIPlanPtr snap_plan = NULL;
	static SPIPlanPtr total_plan = NULL;
	static const Oid types[2] = {INT8OID, FLOAT8OID};
	Datum		values[2];
	SPITupleTable *rows;
	int64		lines;
	int64		total = 0;
	int			n;
	int			i;

	values[0] = Int64GetDatum(ctx->lock->lock_id);
	values[1] = Float8GetDatum(checkout_price_drift_tolerance);

	checkout_exec(&count_plan,
				  "SELECT pg_catalog.count(*) FROM checkout.lock_lines WHERE lock_id = $1",
				  1, types, values, NULL, false, 1);
	lines = checkout_int8_cell(SPI_tuptable, 0, 1, NULL);

	/* drift is NULL (unbounded) when the cart said 0 and the price is now positive */
	n = checkout_exec(&snap_plan,
					  "WITH snap AS ("
					  "  INSERT INTO checkout.price_snapshots "
					  "    (lock_id, line_id, sku, quantity, cart_price, locked_price, drift_percent) "
					  "  SELECT l.lock_id, l.line_id, l.sku, l.quantity, l.cart_price, i.unit_price, "
					  "         CASE WHEN l.cart_price = 0 THEN CASE WHEN i.unit_price = 0 THEN 0 END "
					  "              ELSE pg_catalog.abs(i.unit_price::numeric - l.cart_price) * 100 / l.cart_price END "
					  "  FROM checkout.lock_lines l JOIN checkout.inventory i ON i.sku = l.sku "
					  "  WHERE l.lock_id = $1 "
					  "  RETURNING line_id, sku, quantity, cart_price, locked_price, drift_percent) "
					  "SELECT line_id, sku, quantity, cart_price, locked_price, "
					  "       pg_catalog.round(drift_percent, 4)::text, "
					  "       drift_percent IS NULL OR drift_percent > $2::numeric, "
					  "       drift_percent <> 0 "
					  "FROM snap ORDER BY line_id",
					  2, types, values, NULL, false, 0);
	rows = SPI_tuptable;
	if (n < lines)
		return business_failure(ctx, CHECKOUT_INVALID_CART,
								"a sku of the cart is no longer in the inventory");

	for (i = 0; i < n; i++)
	{
		int64		quantity = checkout_int8_cell(rows, i, 3, NULL);
		int64		locked = checkout_int8_cell(rows, i, 5, NULL);
		int64		line_total;

		if (checkout_bool_cell(rows, i, 7))
		{
			char	   *drift = checkout_text_cell(rows, i, 6);

			return business_failure(ctx, CHECKOUT_PRICE_DRIFT,
									"price of sku \"%s\" (line \"%s\") changed from " INT64_FORMAT
									" to " INT64_FORMAT ": drift %s%% exceeds the tolerance of %g%%",
									checkout_text_cell(rows, i, 2), checkout_text_cell(rows, i, 1),
									checkout_int8_cell(rows, i, 4, NULL), locked,
									drift ? drift : "unbounded", checkout_price_drift_tolerance);
		}
		if (pg_mul_s64_overflow(locked, quantity, &line_total) ||
			pg_add_s64_overflow(total, line_total, &total))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("checkout total is out of range for type bigint"),
					 errdetail("Lock " INT64_FORMAT ", line \"%s\".", ctx->lock->lock_id,
							   checkout_text_cell(rows, i, 1))));
	}

	values[1] = Int64GetDatum(total);
	{
		static const Oid total_types[2] = {INT8OID, INT8OID};

		checkout_exec(&total_plan, "UPDATE checkout.locks SET total = $2 WHERE lock_id = $1",
					  2, total_types, values, NULL, false, 0);
	}
	ctx->lock->total = total;
	ctx->lock->has_total = true;

	for (i = 0; i < n && event_wanted(EVC_PRICE_DRIFT, false); i++)
	{
		CheckoutEvent ev;

		if (!checkout_bool_cell(rows, i, 8))
			continue;
		event_begin(&ev, EVC_PRICE_DRIFT, "price drift", ctx->lock->lock_id, ctx->lock->cart_id, false);
		event_add_text(&ev, "sku", checkout_text_cell(rows, i, 2));
		event_add_text(&ev, "line_id", checkout_text_cell(rows, i, 1));
		event_add_int(&ev, "cart_price", checkout_int8_cell(rows, i, 4, NULL));
		event_add_int(&ev, "current_price", checkout_int8_cell(rows, i, 5, NULL));
		event_add_raw(&ev, "drift_percent", checkout_text_cell(rows, i, 6));
		event_emit(&ev);
	}
	if (event_wanted(EVC_PHASES, false))
	{
		CheckoutEvent ev;

		event_begin(&ev, EVC_PHASES, "price locked", ctx->lock->lock_id, ctx->lock->cart_id, false);
		event_add_int(&ev, "total", total);
		event_add_int(&ev, "lines", n);
		event_emit(&ev);
	}
	return true;
}

static bool
refuse_payment(PhaseContext *ctx, const char *kind, const char *what, int64 expected)
{
	ctx->refused_kind = kind;
	ctx->refused = *ctx->payment;
	return business_failure(ctx, CHECKOUT_PAYMENT_MISMATCH,
							"%s amount " INT64_FORMAT " (reference \"%s\") does not match " INT64_FORMAT,
							what, ctx->payment->amount, ctx->payment->reference, expected);
}

static void
record_payment(PhaseContext *ctx, SPIPlanPtr *plan, const char *sql)
{
	static const Oid types[3] = {INT8OID, TEXTOID, INT8OID};
	Datum		values[3];

	values[0] = Int64GetDatum(ctx->lock->lock_id);
	values[1] = CStringGetTextDatum(ctx->payment->reference);
	values[2] = Int64GetDatum(ctx->payment->amount);
	checkout_exec(plan, sql, 3, types, values, NULL, false, 0);
}

static bool
run_payment_authorization(PhaseContext *ctx)
{
	static SPIPlanPtr plan = NULL;

	if (!ctx->lock->has_total || ctx->payment->amount != ctx->lock->total)
		return refuse_payment(ctx, "void_required", "authorised", ctx->lock->total);
	record_payment(ctx, &plan,
				   "UPDATE checkout.locks SET auth_reference = $2, auth_amount = $3 WHERE lock_id = $1");
	ctx->lock->has_auth = true;
	ctx->lock->auth_amount = ctx->payment->amount;
	return true;
}

static bool
run_order_creation(PhaseContext *ctx)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[5] = {INT8OID, TEXTOID, TEXTOID, INT8OID, TEXTOID};
	Datum		values[5];
	bool		own = ctx->order_ref != NULL;

	values[0] = Int64GetDatum(ctx->lock->lock_id);
	values[1] = CStringGetTextDatum(own ? ctx->order_ref
									: psprintf("CO-" INT64_FORMAT, ctx->lock->lock_id));
	values[2] = CStringGetTextDatum(ctx->lock->cart_id);
	values[3] = Int64GetDatum(ctx->lock->total);
	values[4] = CStringGetTextDatum(own ? "application" : "checkout");

	if (checkout_exec(&plan,
					  "WITH o AS (INSERT INTO checkout.orders (order_ref, lock_id, cart_id, total, source) "
					  "           VALUES ($2, $1, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING order_ref) "
					  "UPDATE checkout.locks l SET order_ref = o.order_ref FROM o "
					  "WHERE l.lock_id = $1 RETURNING o.order_ref",
					  5, types, values, NULL, false, 0) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECKOUT_PAYLOAD_REQUIRED),
				 errmsg("order_ref \"%s\" is already used by another checkout", TextDatumGetCString(values[1])),
				 errhint("Pass a unique order_ref, or none to let checkout create the order.")));
	ctx->lock->order_ref = checkout_text_cell(SPI_tuptable, 0, 1);
	return true;
}

static bool
run_payment_capture(PhaseContext *ctx)
{
	static SPIPlanPtr plan = NULL;

	if (!ctx->lock->has_auth || ctx->payment->amount != ctx->lock->auth_amount)
		return refuse_payment(ctx, "refund_required", "captured", ctx->lock->auth_amount);
	record_payment(ctx, &plan,
				   "UPDATE checkout.locks SET capture_reference = $2, capture_amount = $3 WHERE lock_id = $1");
	ctx->lock->captured = true;
	return true;
}

static bool
run_stock_commit(PhaseContext *ctx)
{
	stock_commit(checkout_int8_array(&ctx->lock->lock_id, 1));
	return true;
}

/* ---- driving the phases ---- */

/*
 * Records phase as completed on the locks; after stock_commit they are
 * completed and their carts free.  rolled_forward marks completion by expiry.
 */
void
mark_phase_completed(Datum lock_ids, CheckoutPhase phase, bool rolled_forward)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8ARRAYOID, TEXTOID};
	Datum		values[2] = {lock_ids, CStringGetTextDatum(phase_name(phase))};
	SPITupleTable *rows;
	int			n;
	int			i;
	bool		completes = phase == PHASE_LAST;

	n = checkout_exec(&plan,
					  "UPDATE checkout.locks SET phase = $2::checkout.phase, "
					  "  state = CASE WHEN $2 = 'stock_commit' THEN 'completed' ELSE state END, "
					  "  finished_at = CASE WHEN $2 = 'stock_commit' THEN pg_catalog.now() END "
					  "WHERE lock_id = ANY ($1) "
					  "RETURNING lock_id, cart_id, total, order_ref, "
					  "  EXTRACT(EPOCH FROM finished_at - created_at)::numeric(20,3)::text",
					  2, types, values, NULL, false, 0);
	rows = SPI_tuptable;
	for (i = 0; i < n; i++)
	{
		int64		lock_id = checkout_int8_cell(rows, i, 1, NULL);
		char	   *cart_id = checkout_text_cell(rows, i, 2);
		CheckoutEvent ev;
		bool		isnull;
		int64		total = checkout_int8_cell(rows, i, 3, &isnull);

		if (event_wanted(EVC_PHASES, false))
		{
			event_begin(&ev, EVC_PHASES, "phase completed", lock_id, cart_id, false);
			event_add_text(&ev, "phase", phase_name(phase));
			if (!isnull)
				event_add_int(&ev, "total", total);
			event_emit(&ev);
		}
		if (completes && event_wanted(EVC_LIFECYCLE, true))
		{
			event_begin(&ev, EVC_LIFECYCLE, "completed", lock_id, cart_id, true);
			event_add_text(&ev, "order_ref", checkout_text_cell(rows, i, 4));
			if (!isnull)
				event_add_int(&ev, "total", total);
			event_add_raw(&ev, "duration_seconds", checkout_text_cell(rows, i, 5));
			if (rolled_forward)
				event_add_raw(&ev, "completed_by_expiry", "true");
			event_emit(&ev);
		}
	}
}

/*
 * Runs one phase in its own subtransaction; false on business failure.  A
 * real error closes the subtransaction before it propagates, so a caller's
 * own exception block (plpgsql) finds the transaction state it left.
 */
static bool
run_phase(const PhaseDef *def, PhaseContext *ctx)
{
	MemoryContext callcxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(callcxt);
	PG_TRY();
	{
		ok = def->run(ctx);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(callcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(callcxt);
		CurrentResourceOwner = owner;
		ReThrowError(edata);
	}
	PG_END_TRY();

	if (ok)
		ReleaseCurrentSubTransaction();
	else
		RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(callcxt);
	CurrentResourceOwner = owner;
	return ok;
}

static PaymentPayload *
parse_payment(JsonbContainer *obj)
{
	JsonbValue *reference = json_object_key(obj, "reference");
	JsonbValue *amount = json_object_key(obj, "amount");
	PaymentPayload *payment;

	if (reference == NULL && amount == NULL)
		return NULL;
	payment = palloc(sizeof(PaymentPayload));
	payment->reference = json_value_text(reference);
	if (payment->reference == NULL || !json_value_int64(amount, &payment->amount) ||
		payment->amount < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECKOUT_PAYLOAD_REQUIRED),
				 errmsg("malformed payment payload"),
				 errhint("Pass {\"reference\": non-empty text, \"amount\": integer >= 0}.")));
	return payment;
}

static void
parse_payload(Jsonb *payload, PhaseContext *ctx)
{
	JsonbValue *order_ref;

	if (!JsonContainerIsObject(&payload->root) || JsonContainerIsScalar(&payload->root))
		ereport(ERROR,
				(errcode(ERRCODE_CHECKOUT_PAYLOAD_REQUIRED),
				 errmsg("payload must be a JSON object")));
	ctx->payment = parse_payment(&payload->root);
	order_ref = json_object_key(&payload->root, "order_ref");
	if (order_ref)
	{
		ctx->order_ref = json_value_text(order_ref);
		if (ctx->order_ref == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CHECKOUT_PAYLOAD_REQUIRED),
					 errmsg("malformed order payload"),
					 errhint("Pass {\"order_ref\": non-empty text}, or no order_ref.")));
	}
}

static void
fail_lock(PhaseContext *ctx, CheckoutPhase phase)
{
	Datum		ids = checkout_int8_array(&ctx->lock->lock_id, 1);

	if (ctx->refused_kind)
		record_compensation(ctx->lock->lock_id, ctx->lock->cart_id, ctx->refused_kind,
							ctx->refused.reference, ctx->refused.amount);
	end_locks(ids, "failed", phase, ctx->error_code, ctx->error_message);
}

Datum
checkout_advance(PG_FUNCTION_ARGS)
{
	int64		lock_id;
	char	   *session_id;
	CheckoutPhase until = PHASE_NONE;
	CheckoutPhase target;
	PhaseContext ctx;
	LockRow		row;
	int			p;
	Datum		result;

	require_arg(fcinfo, 0, "lock_id");
	lock_id = PG_GETARG_INT64(0);
	session_id = require_text_arg(fcinfo, 1, "session_id");
	memset(&ctx, 0, sizeof(ctx));
	if (!PG_ARGISNULL(2))
		parse_payload(PG_GETARG_JSONB_P(2), &ctx);
	if (!PG_ARGISNULL(3))
		until = phase_from_name(DatumGetCString(DirectFunctionCall1(enum_out, PG_GETARG_DATUM(3))));

	SPI_connect();
	lock_for_session(lock_id, session_id, &row);
	ctx.lock = &row;

	if (expire_if_overdue(&row))
		lock_fetch_for_update(lock_id, &row);
	else if (until == PHASE_NONE || row.phase < until)
	{
		/* a retry of an already completed `until` is answered with the status */
		if (!lock_is_active(&row))
			raise_not_active(&row);

		target = until != PHASE_NONE ? until : (CheckoutPhase) (row.phase + 1);
		for (p = row.phase + 1; p <= target; p++)
		{
			const PhaseDef *def = &phase_table[p];

			if (def->payload == PAYLOAD_PAYMENT && ctx.payment == NULL)
			{
				if (until != PHASE_NONE)
					break;		/* stop early before a phase that needs payload */
				ereport(ERROR,
						(errcode(ERRCODE_CHECKOUT_PAYLOAD_REQUIRED),
						 errmsg("phase %s requires a payload", def->name),
						 errdetail("Checkout lock " INT64_FORMAT ".", lock_id),
						 errhint("Pass {\"reference\": text, \"amount\": bigint}.")));
			}
			if (!run_phase(def, &ctx))
			{
				fail_lock(&ctx, def->phase);
				break;
			}
			mark_phase_completed(checkout_int8_array(&lock_id, 1), def->phase, false);
			row.phase = def->phase;
			if (def->payload == PAYLOAD_PAYMENT)
				ctx.payment = NULL; /* one payment payload serves one phase */
		}
	}

	result = lock_status_datum(lock_id);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

Datum
checkout_fail(PG_FUNCTION_ARGS)
{
	int64		lock_id;
	char	   *session_id;
	char	   *reason;

	require_arg(fcinfo, 0, "lock_id");
	lock_id = PG_GETARG_INT64(0);
	session_id = require_text_arg(fcinfo, 1, "session_id");
	reason = require_text_arg(fcinfo, 2, "reason");
	PG_RETURN_DATUM(end_session_lock(lock_id, session_id, "failed", PHASE_PENDING,
									 CHECKOUT_APP_FAILURE, reason));
}
