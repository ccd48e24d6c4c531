/*
 * api.c — the SQL-callable functions of the application and admin API:
 * checkout_start, checkout_advance, checkout_status, checkout_extend,
 * checkout_cancel, checkout_fail and checkout_release.
 *
 * Each checks its arguments before it touches a table (22023), takes the
 * lock's row lock, expires an overdue lock on touch, does its work through
 * phases.c and lifecycle.c, and returns the status row built from the row it
 * holds in memory (no re-read).
 */
#include "postgres.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "cart.h"
#include "events.h"
#include "expiry.h"
#include "lifecycle.h"
#include "phases.h"
#include "store.h"
#include "util.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(checkout_start);
PG_FUNCTION_INFO_V1(checkout_advance);
PG_FUNCTION_INFO_V1(checkout_status);
PG_FUNCTION_INFO_V1(checkout_extend);
PG_FUNCTION_INFO_V1(checkout_cancel);
PG_FUNCTION_INFO_V1(checkout_fail);
PG_FUNCTION_INFO_V1(checkout_release);

/* The checkout.status row of the lock, in the current memory context. */
static Datum
status_datum(FunctionCallInfo fcinfo, const LockRow *row, const CallReport *report)
{
	TupleDesc	desc;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "checkout: function must return checkout.status");
	return HeapTupleGetDatum(lock_status_tuple(row, report, BlessTupleDesc(desc)));
}

/*
 * Finishes an API call: writes buffered event rows, builds the status tuple
 * in the caller's memory context and disconnects from SPI.
 */
static Datum
finish_call(FunctionCallInfo fcinfo, MemoryContext callcxt, int spi_state, const LockRow *row,
			const CallReport *report)
{
	Datum		result;
	MemoryContext spicxt;

	events_flush();
	spicxt = MemoryContextSwitchTo(callcxt);
	result = status_datum(fcinfo, row, report);
	MemoryContextSwitchTo(spicxt);
	checkout_spi_finish(spi_state);
	return result;
}

static int64
lock_id_arg(FunctionCallInfo fcinfo)
{
	require_arg(fcinfo, 0, "lock_id");
	return PG_GETARG_INT64(0);
}

static char *
session_arg(FunctionCallInfo fcinfo, int argno)
{
	return require_text_arg(fcinfo, argno, "session_id", CHECKOUT_MAX_IDENTIFIER);
}

/*
 * The session's lock, row-locked, and the start of the call's report on it;
 * KC002 for an unknown lock or another session's.
 */
static void
session_lock(int64 lock_id, const char *session_id, LockRow *row, CallReport *report)
{
	if (!store_lock_fetch(lock_id, session_id, row))
		raise_lock_not_found(lock_id);
	call_report_begin(report, row);
}

/* ---- checkout_start ---- */

/*
 * The cart's active locks: overdue ones are expired; returns true with this
 * session's live lock (re-entry), raises KC001 for another session's live
 * lock (when checkout.prevent_concurrent is on), false when the cart is free.
 */
static bool
claim_cart(const char *cart_id, const char *session_id, LockRow *mine, CallReport *report)
{
	LockRow    *rows;
	int			n = store_locks_of_cart(cart_id, &rows);
	bool		other = false;
	bool		found = false;
	int			i;

	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (expire_if_overdue(&rows[i]))
			continue;
		if (strcmp(rows[i].session_id, session_id) == 0)
		{
			if (!found)
			{
				*mine = rows[i];
				call_report_begin(report, mine);
			}
			found = true;
		}
		else
			other = true;
	}
	if (found)
		return true;
	if (other && checkout_prevent_concurrent)
		ereport(ERROR,
				(errcode(ERRCODE_CHECKOUT_IN_PROGRESS),
				 errmsg("checkout already in progress for cart %s", quote_user_text(cart_id)),
				 errdetail("Another session holds the cart's active checkout lock."),
				 errhint("Wait for that checkout to finish or expire.")));
	return false;
}

Datum
checkout_start(PG_FUNCTION_ARGS)
{
	int			spi_state;
	MemoryContext callcxt = CurrentMemoryContext;
	char	   *cart_id = require_text_arg(fcinfo, 0, "cart_id", CHECKOUT_MAX_IDENTIFIER);
	char	   *session_id = session_arg(fcinfo, 1);
	char	   *idem_key = NULL;
	double		ttl_secs = Min((double) checkout_ttl_s, (double) checkout_max_ttl_s);
	CartLines	cart;
	LockRow		row;
	CallReport	report;
	bool		have = false;
	int			attempt;

	require_arg(fcinfo, 2, "lines");
	if (!PG_ARGISNULL(3))
		ttl_secs = interval_arg_seconds(fcinfo, 3, "ttl");
	if (!PG_ARGISNULL(4))
		idem_key = require_text_arg(fcinfo, 4, "idempotency_key", CHECKOUT_MAX_IDENTIFIER);
	parse_cart_lines(PG_GETARG_JSONB_P(2), &cart);

	spi_state = checkout_spi_connect();
	store_claim_start(checkout_prevent_concurrent ? cart_id : NULL, session_id, idem_key);

	/*
	 * The common case: the cart is free, and the lock is inserted.  When the
	 * cart has an active lock, look at it, and try again once an overdue
	 * lock was expired.
	 */
	for (attempt = 0; attempt < 3 && !have; attempt++)
	{
		if (idem_key && store_lock_fetch_by_key(session_id, idem_key, &row))
		{
			if (strcmp(row.cart_id, cart_id) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("idempotency key %s was already used for cart %s",
								quote_user_text(idem_key), quote_user_text(row.cart_id)),
						 errhint("Use a new idempotency key for each checkout.")));
			call_report_begin(&report, &row);
			expire_if_overdue(&row);
			have = true;
			break;
		}
		/* without prevent_concurrent nothing conflicts: re-entry is found first */
		if ((attempt > 0 || !checkout_prevent_concurrent) && claim_cart(cart_id, session_id, &row, &report))
		{
			have = true;
			break;
		}
		if (lock_create(cart_id, session_id, idem_key, ttl_secs, &cart, &row))
		{
			call_report_begin(&report, &row);
			report.created = true;
			checkout_worker_wake(row.expires_at);
			have = true;
		}
	}
	if (!have)
		ereport(ERROR,
				(errcode(ERRCODE_CHECKOUT_IN_PROGRESS),
				 errmsg("checkout already in progress for cart %s", quote_user_text(cart_id)),
				 errdetail("Concurrent checkouts kept claiming the cart.")));
	PG_RETURN_DATUM(finish_call(fcinfo, callcxt, spi_state, &row, &report));
}

/* ---- checkout_advance ---- */

/*
 * Runs phases after the lock's last completed one up to target; on a
 * business failure the lock fails with every completed phase compensated.
 * With `late` the stock rows are only read, every failure is left to the
 * caller to decide again (false), and the caller writes the reservation
 * once its rows are locked and checked (true).
 */
static bool
advance_phases(LockRow *row, AdvancePayload *payload, CheckoutPhase target,
			   CheckoutPhase until, StockReservation *late)
{
	PhaseContext ctx;
	int			p;

	memset(&ctx, 0, sizeof(ctx));
	ctx.lock = row;
	ctx.payment = payload->payment;
	ctx.order_ref = payload->order_ref;
	ctx.late = late;

	for (p = row->phase + 1; p <= target; p++)
	{
		const PhaseDef *def = phase_def((CheckoutPhase) p);

		CHECK_FOR_INTERRUPTS();
		if (def->payload == PAYLOAD_PAYMENT && ctx.payment == NULL)
		{
			if (until != PHASE_NONE)
				break;			/* stop early before a phase that needs payload */
			ereport(ERROR,
					(errcode(ERRCODE_CHECKOUT_PAYLOAD_REQUIRED),
					 errmsg("phase %s requires a payload", phase_name(def->phase)),
					 errdetail("Checkout lock " INT64_FORMAT ".", row->lock_id),
					 errhint("Pass {\"reference\": text, \"amount\": bigint}.")));
		}
		if (p == PHASE_LAST)
		{
			/*
			 * The sale locks the skus' ledger rows, which every checkout of
			 * a popular sku waits on, so it comes after the lock's own row
			 * is written: right before commit.  It cannot fail as a business
			 * failure; the events keep their order.
			 */
			row->phase = PHASE_LAST;
			lock_mark_completed(row);
			if (!def->run(&ctx))
				elog(ERROR, "checkout phase %s cannot fail", phase_name(def->phase));
			phase_completed_event(row, PHASE_LAST);
			lock_completed_event(row, false);
			return true;
		}
		if (!def->run(&ctx))
		{
			if (late)
				return false;
			locks_end(&row, 1, LOCK_FAILED, def->phase, ctx.error_code, ctx.error_message);
			return true;
		}
		row->phase = def->phase;
		phase_completed_event(row, def->phase);
		if (def->payload == PAYLOAD_PAYMENT)
			ctx.payment = NULL; /* one payment payload serves one phase */
	}
	store_lock_save(row);
	return late == NULL || stock_lock_late(late);
}

static void
run_phases(LockRow *row, AdvancePayload *payload, CheckoutPhase until)
{
	CheckoutPhase target = until != PHASE_NONE ? until : (CheckoutPhase) (row->phase + 1);

	/*
	 * A call that reserves and goes no further than price_lock reserves
	 * late: it decides from the stock rows as read, writes the price
	 * snapshots and the lock's row, and only then locks the ledger rows,
	 * which every checkout of a popular sku waits on, to write the
	 * reservation right before commit.  When a row changed in between, or
	 * a phase would fail, what it wrote and emitted is taken back and the
	 * call decides again with the rows locked from the start.  Events are
	 * held until then, so no code a user added to the tables written
	 * meanwhile may run: with a trigger or rule of theirs there, the call
	 * locks the rows first.  Where a sku is striped, its buyers queue on no
	 * one row, and every call takes its rows in order from the start.
	 */
	if (row->phase < PHASE_INVENTORY_RESERVATION &&
		target >= PHASE_INVENTORY_RESERVATION && target <= PHASE_PRICE_LOCK &&
		!events_held() && !store_lock_writes_run_user_code() && !store_striping_in_use())
	{
		LockRow		before = *row;
		StockReservation late;

		memset(&late, 0, sizeof(late));
		events_hold();
		if (advance_phases(row, payload, target, until, &late))
		{
			events_release();
			stock_write_reservation(row->lock_id, &late);
			return;
		}
		events_discard();
		if (row->phase >= PHASE_INVENTORY_RESERVATION && target >= PHASE_PRICE_LOCK)
			store_snapshots_delete(row->lock_id);
		before.version = row->version;	/* the version written meanwhile is the latest */
		*row = before;			/* its row is written again */
	}
	(void) advance_phases(row, payload, target, until, NULL);
}

Datum
checkout_advance(PG_FUNCTION_ARGS)
{
	int			spi_state;
	MemoryContext callcxt = CurrentMemoryContext;
	int64		lock_id = lock_id_arg(fcinfo);
	char	   *session_id = session_arg(fcinfo, 1);
	CheckoutPhase until = PHASE_NONE;
	AdvancePayload payload;
	LockRow		row;
	CallReport	report;

	memset(&payload, 0, sizeof(payload));
	if (!PG_ARGISNULL(2))
		parse_advance_payload(PG_GETARG_JSONB_P(2), &payload);
	if (!PG_ARGISNULL(3))
		until = phase_from_name(DatumGetCString(DirectFunctionCall1(enum_out, PG_GETARG_DATUM(3))));

	spi_state = checkout_spi_connect();
	session_lock(lock_id, session_id, &row, &report);
	/* a retry of an already completed `until` is answered with the status */
	if (!expire_if_overdue(&row) && (until == PHASE_NONE || row.phase < until))
	{
		if (row.state != LOCK_ACTIVE)
			raise_not_active(&row);
		run_phases(&row, &payload, until);
	}
	PG_RETURN_DATUM(finish_call(fcinfo, callcxt, spi_state, &row, &report));
}

/* ---- checkout_status: read-only, so it works on a hot standby ---- */

Datum
checkout_status(PG_FUNCTION_ARGS)
{
	int64		lock_id = lock_id_arg(fcinfo);
	char	   *session_id = session_arg(fcinfo, 1);
	LockRow		row;

	if (!store_lock_read(lock_id, session_id, &row))
		raise_lock_not_found(lock_id);
	PG_RETURN_DATUM(status_datum(fcinfo, &row, NULL));
}

/* ---- checkout_extend ---- */

Datum
checkout_extend(PG_FUNCTION_ARGS)
{
	int			spi_state;
	MemoryContext callcxt = CurrentMemoryContext;
	int64		lock_id = lock_id_arg(fcinfo);
	char	   *session_id = session_arg(fcinfo, 1);
	double		by_secs;
	LockRow		row;
	CallReport	report;

	require_arg(fcinfo, 2, "by");
	by_secs = interval_arg_seconds(fcinfo, 2, "by");

	spi_state = checkout_spi_connect();
	session_lock(lock_id, session_id, &row, &report);
	if (!expire_if_overdue(&row))
	{
		if (row.state != LOCK_ACTIVE)
			raise_not_active(&row);
		lock_extend(&row, by_secs);
	}
	PG_RETURN_DATUM(finish_call(fcinfo, callcxt, spi_state, &row, &report));
}

/* ---- checkout_cancel / checkout_fail / checkout_release ---- */

/*
 * Ends the session's active lock with rollback (cancel, checkout_fail); an
 * overdue lock is expired instead.
 */
static Datum
end_session_lock(FunctionCallInfo fcinfo, int64 lock_id, const char *session_id, LockState state,
				 CheckoutPhase failed_phase, const char *error_code, const char *error_message)
{
	int			spi_state;
	MemoryContext callcxt = CurrentMemoryContext;
	LockRow		row;
	LockRow    *rows[1] = {&row};
	CallReport	report;

	spi_state = checkout_spi_connect();
	session_lock(lock_id, session_id, &row, &report);
	if (!expire_if_overdue(&row))
	{
		if (row.state != LOCK_ACTIVE)
			raise_not_active(&row);
		locks_end(rows, 1, state, failed_phase, error_code, error_message);
	}
	return finish_call(fcinfo, callcxt, spi_state, &row, &report);
}

Datum
checkout_cancel(PG_FUNCTION_ARGS)
{
	int64		lock_id = lock_id_arg(fcinfo);
	char	   *session_id = session_arg(fcinfo, 1);

	PG_RETURN_DATUM(end_session_lock(fcinfo, lock_id, session_id, LOCK_CANCELLED, PHASE_NONE,
									 NULL, NULL));
}

Datum
checkout_fail(PG_FUNCTION_ARGS)
{
	int64		lock_id = lock_id_arg(fcinfo);
	char	   *session_id = session_arg(fcinfo, 1);
	char	   *reason = require_text_arg(fcinfo, 2, "reason", CHECKOUT_MAX_REASON);

	PG_RETURN_DATUM(end_session_lock(fcinfo, lock_id, session_id, LOCK_FAILED, PHASE_PENDING,
									 CHECKOUT_APP_FAILURE, reason));
}

Datum
checkout_release(PG_FUNCTION_ARGS)
{
	int			spi_state;
	MemoryContext callcxt = CurrentMemoryContext;
	int64		lock_id = lock_id_arg(fcinfo);
	char	   *reason = require_text_arg(fcinfo, 1, "reason", CHECKOUT_MAX_REASON);
	/* the function runs as its owner: name the admin who called it */
	char	   *message = psprintf("released by %s: %s",
								   GetUserNameFromId(GetOuterUserId(), false), reason);
	LockRow		row;
	LockRow    *rows[1] = {&row};
	CallReport	report;

	spi_state = checkout_spi_connect();
	if (!store_lock_fetch(lock_id, NULL, &row))
		ereport(ERROR,
				(errcode(ERRCODE_CHECKOUT_LOCK_NOT_FOUND),
				 errmsg("checkout lock " INT64_FORMAT " not found", lock_id)));
	if (row.state != LOCK_ACTIVE)
		raise_not_active(&row);
	call_report_begin(&report, &row);
	locks_end(rows, 1, LOCK_CANCELLED, PHASE_NONE, NULL, message);
	PG_RETURN_DATUM(finish_call(fcinfo, callcxt, spi_state, &row, &report));
}
