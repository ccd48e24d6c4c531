/*
 * lifecycle.c — a lock's life: its creation, and the only code that moves it
 * out of `active`: completed (after stock_commit, or rolled forward when a
 * paid lock expires), or failed / expired / cancelled with every completed
 * phase compensated in reverse order (locks_end).  The roll-forward rule
 * lives here too (lock_effective_state), used by the status a client sees
 * and by expiry alike.  Its rows are read and written through store.c.
 *
 * Concurrency: a call on an existing lock row-locks the lock's row first
 * (FOR UPDATE, filtered on session_id so a wrong session never waits on, and
 * so never learns of, another session's busy lock); calls on one lock
 * therefore serialize.  Two starts of one cart (or with one idempotency key)
 * come one after the other on the start's claim (store_claim_start), held
 * until commit: the second sees the first's lock, and the unique index over
 * active exclusive locks backs this up.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "errors.h"
#include "events.h"
#include "lifecycle.h"
#include "phases.h"
#include "settings.h"
#include "store.h"
#include "util.h"

/* Active and past its deadline, as of the transaction's start (now()). */
bool
lock_overdue(const LockRow *row)
{
	return row->state == LOCK_ACTIVE &&
		   row->expires_at <= GetCurrentTransactionStartTimestamp();
}

/*
 * The state a client sees: an overdue lock is as good as expired, or, once
 * its payment was captured, completed (expiry rolls it forward).
 */
LockState
lock_effective_state(const LockRow *row)
{
	if (!lock_overdue(row))
		return row->state;
	return row->capture_reference != NULL ? LOCK_COMPLETED : LOCK_EXPIRED;
}

void
raise_lock_not_found(int64 lock_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_CHECKOUT_LOCK_NOT_FOUND),
			 errmsg("checkout lock " INT64_FORMAT " not found", lock_id),
			 errhint(
				 "A lock is visible only to the session that started it.")));
}

void
raise_not_active(const LockRow *row)
{
	ereport(ERROR,
			(errcode(ERRCODE_CHECKOUT_LOCK_NOT_ACTIVE),
			 errmsg("checkout lock " INT64_FORMAT " is %s", row->lock_id,
					lock_state_name(lock_effective_state(row))),
			 errhint("Start a new checkout for cart %s.",
					 quote_user_text(row->cart_id))));
}

/* ---- writing ---- */

/*
 * Inserts the lock, then its lines; the caller holds the start's claim
 * (store_claim_start).  With checkout.prevent_concurrent on, it inserts
 * nothing (returns false) while the cart has an active lock: the caller then
 * looks at the cart's locks.
 */
bool
lock_create(const char *cart_id, const char *session_id,
			const char *idempotency_key, double ttl_secs,
			const CartLines *cart, LockRow *row)
{
	if (checkout_prevent_concurrent && store_cart_has_active_lock(cart_id))
		return false;
	store_lock_insert(cart_id, session_id, idempotency_key,
					  checkout_prevent_concurrent,
					  checkout_payment_gateway ? checkout_payment_gateway : "",
					  ttl_secs, row);
	store_lines_insert(row->lock_id, cart);

	if (event_wanted(EV_STARTED))
	{
		CheckoutEvent ev;

		event_begin(&ev, EV_STARTED, row->lock_id, cart_id);
		event_add_text(&ev, "session", session_fingerprint(session_id));
		event_add_int(&ev, "lines", cart->n);
		event_add_int(&ev, "cart_total", cart->total);
		event_add_int(&ev, "ttl_seconds", (int64) ttl_secs);
		event_add_time(&ev, "expires_at", row->expires_at);
		event_add_text(&ev, "gateway", checkout_payment_gateway);
		event_emit(&ev);
	}
	return true;
}

/*
 * The label of an enum column (attno counted from 0) as a value of its type.
 */
static Datum
enum_datum(TupleDesc desc, int attno, const char *label)
{
	return DirectFunctionCall2(enum_in, CStringGetDatum(label),
							   ObjectIdGetDatum(
								   TupleDescAttr(desc, attno)->atttypid));
}

/*
 * Pushes expires_at by by_secs, never past created_at + max_ttl nor backwards.
 */
void
lock_extend(LockRow *row, double by_secs)
{
	TimestampTz wanted = row->expires_at + (int64) (by_secs * USECS_PER_SEC);
	TimestampTz limit = row->created_at +
						(int64) checkout_max_ttl_s * USECS_PER_SEC;

	row->expires_at = Max(row->expires_at, Min(wanted, limit));
	store_lock_save(row);
	if (event_wanted(EV_EXTENDED))
	{
		CheckoutEvent ev;

		event_begin(&ev, EV_EXTENDED, row->lock_id, row->cart_id);
		event_add_time(&ev, "expires_at", row->expires_at);
		event_emit(&ev);
	}
}

/* ---- ending ---- */

/*
 * A lock that completed stock_commit becomes completed: its row written back.
 */
void
lock_mark_completed(LockRow *row)
{
	Assert(row->phase == PHASE_LAST);
	row->state = LOCK_COMPLETED;
	row->finished_at = GetCurrentTransactionStartTimestamp();
	store_lock_save(row);
}

/*
 * The "completed" event of a lock lock_mark_completed wrote (rolled_forward:
 * by expiry).
 */
void
lock_completed_event(const LockRow *row, bool rolled_forward)
{
	CheckoutEvent ev;

	if (!event_wanted(EV_COMPLETED))
		return;
	event_begin(&ev, EV_COMPLETED, row->lock_id, row->cart_id);
	event_add_text(&ev, "order_ref", row->order_ref);
	if (row->has_total)
		event_add_int(&ev, "total", row->total);
	event_add_raw(&ev, "duration_seconds",
				  duration_seconds_text(row->created_at, row->finished_at));
	if (rolled_forward)
		event_add_raw(&ev, "completed_by_expiry", "true");
	event_emit(&ev);
}

/*
 * Locks that completed stock_commit (rolled_forward: by expiry) become
 * completed.
 */
void
locks_complete(LockRow *const *rows, int n, bool rolled_forward)
{
	int i;

	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		lock_mark_completed(rows[i]);
		lock_completed_event(rows[i], rolled_forward);
	}
}

/* Compensates every completed phase of the locks, last phase first. */
static void
roll_back(LockRow *const *rows, int n)
{
	LockRow **done = palloc(sizeof(LockRow *) * Max(n, 1));
	int		  phase;
	int		  i;

	if (event_wanted(EV_ROLLBACK_STARTED))
	{
		for (i = 0; i < n; i++)
		{
			CheckoutEvent ev;

			if (rows[i]->phase == PHASE_NONE)
				continue;
			event_begin(&ev, EV_ROLLBACK_STARTED, rows[i]->lock_id,
						rows[i]->cart_id);
			event_add_text(&ev, "from_phase", phase_name(rows[i]->phase));
			event_emit(&ev);
		}
	}
	for (phase = PHASE_LAST; phase > PHASE_NONE; phase--)
	{
		const PhaseDef *def = phase_def((CheckoutPhase) phase);
		int				m = 0;

		if (def->compensate == NULL)
			continue;
		for (i = 0; i < n; i++)
			if (rows[i]->phase >= phase)
				done[m++] = rows[i];
		if (m > 0)
			def->compensate(done, m);
	}
}

/*
 * Ends the locks (row-locked by the caller) without completing them:
 * compensations in reverse phase order, then the final state with the phase
 * that failed (PHASE_PENDING: the one after the last completed), error code
 * and message.
 */
void
locks_end(LockRow *const *rows, int n, LockState state,
		  CheckoutPhase failed_phase, const char *error_code,
		  const char *error_message)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	EventKind	event = state == LOCK_FAILED	? EV_FAILED
						: state == LOCK_EXPIRED ? EV_EXPIRED
												: EV_CANCELLED;
	int			i;

	Assert(state != LOCK_ACTIVE && state != LOCK_COMPLETED);
	roll_back(rows, n);
	for (i = 0; i < n; i++)
	{
		LockRow *row = rows[i];

		CHECK_FOR_INTERRUPTS();
		row->state = state;
		row->finished_at = now;
		row->failed_phase = failed_phase != PHASE_PENDING
								? failed_phase
								: (CheckoutPhase) Min(row->phase + 1,
													  PHASE_LAST);
		row->error_code = error_code ? pstrdup(error_code) : NULL;
		row->error_message = error_message ? pstrdup(error_message) : NULL;
		store_lock_save(row);

		if (event_wanted(event))
		{
			CheckoutEvent ev;

			event_begin(&ev, event, row->lock_id, row->cart_id);
			if (state != LOCK_FAILED)
				event_add_text(&ev, "last_phase",
							   row->phase > PHASE_NONE ? phase_name(row->phase)
													   : NULL);
			if (row->failed_phase > PHASE_NONE)
				event_add_text(&ev, "phase", phase_name(row->failed_phase));
			if (error_code)
				event_add_text(&ev, "code", error_code);
			if (error_message)
				event_add_text(&ev,
							   state == LOCK_CANCELLED ? "reason" : "detail",
							   error_message);
			event_add_raw(&ev, "duration_seconds",
						  duration_seconds_text(row->created_at, now));
			event_emit(&ev);
		}
	}
}

/* ---- the status row ---- */

/* The start of a report on a call that found the lock as row is now. */
void
call_report_begin(CallReport *report, const LockRow *row)
{
	report->created = false;
	report->phase_before = row->phase;
	report->was_active = row->state == LOCK_ACTIVE;
}

/*
 * checkout.status of the lock, as its session sees it now, with what this
 * call did (report; NULL: nothing, as for checkout_status).  The 0.3.0
 * library also runs against the 0.2.0 schema until ALTER EXTENSION UPDATE:
 * it fills the fields the type has.
 */
HeapTuple
lock_status_tuple(const LockRow *row, const CallReport *report, TupleDesc desc)
{
	Datum values[STATUS_FIELDS];
	bool  nulls[STATUS_FIELDS];

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(row->lock_id);
	values[1] = CStringGetTextDatum(row->cart_id);
	values[2] = enum_datum(desc, 2,
						   lock_state_name(lock_effective_state(row)));
	if (row->phase > PHASE_NONE)
		values[3] = enum_datum(desc, 3, phase_name(row->phase));
	else
		nulls[3] = true;
	values[4] = TimestampTzGetDatum(row->expires_at);
	values[5] = Int64GetDatum(row->total);
	nulls[5] = !row->has_total;
	if (row->order_ref)
		values[6] = CStringGetTextDatum(row->order_ref);
	else
		nulls[6] = true;
	if (row->failed_phase > PHASE_NONE)
		values[7] = enum_datum(desc, 7, phase_name(row->failed_phase));
	else
		nulls[7] = true;
	if (row->error_code)
		values[8] = CStringGetTextDatum(row->error_code);
	else
		nulls[8] = true;
	if (row->error_message)
		values[9] = CStringGetTextDatum(row->error_message);
	else
		nulls[9] = true;
	if (desc->natts >= STATUS_FIELDS)
	{
		Oid	   phase_type = TupleDescAttr(desc, 3)->atttypid;
		Datum *ran = palloc(sizeof(Datum) * PHASE_LAST);
		int	   n = 0;
		int	   p;

		if (report != NULL)
			for (p = report->phase_before + 1; p <= row->phase; p++)
				ran[n++] = enum_datum(desc, 3, phase_name((CheckoutPhase) p));
		values[10] = BoolGetDatum(report != NULL && report->created);
		values[11] = PointerGetDatum(construct_array(ran, n, phase_type,
													 sizeof(Oid), true,
													 TYPALIGN_INT));
		values[12] = BoolGetDatum(report != NULL && report->was_active &&
								  row->state != LOCK_ACTIVE);
	}
	return heap_form_tuple(desc, values, nulls);
}
