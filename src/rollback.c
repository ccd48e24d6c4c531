/*
 * rollback.c — ending locks: compensating completed phases in reverse order,
 * recording the final state, and expiry.
 *
 * Every way a lock ends without completing — business failure, checkout_fail,
 * cancel, admin release, expiry on touch, checkout_cleanup_expired() and the
 * background worker — goes through end_locks() on a set of locks, walking the
 * phase table backwards and calling each phase's compensation.  Expiry of a
 * paid lock (payment_capture completed) rolls forward instead: the customer
 * has paid, so its stock is sold and it completes.
 *
 * Callers hold the row locks of the locks they pass (FOR UPDATE, or FOR
 * UPDATE SKIP LOCKED in a sweep), so no lock is ended twice.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "checkout.h"

/* ---- compensations, one per phase that has something to undo ---- */

static void
emit_compensation_events(SPITupleTable *rows, int n, const char *kind)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		int64		lock_id = checkout_int8_cell(rows, i, 1, NULL);
		char	   *cart_id = checkout_text_cell(rows, i, 2);
		char	   *reference = checkout_text_cell(rows, i, 3);
		int64		amount = checkout_int8_cell(rows, i, 4, NULL);
		CheckoutEvent ev;

		/* the application must act on these: always notified as <kind> */
		event_begin(&ev, EVC_ROLLBACKS, "rollback step completed", lock_id, cart_id, true);
		ev.notify_name = kind;
		event_add_text(&ev, "step", kind);
		event_add_text(&ev, "reference", reference);
		event_add_int(&ev, "amount", amount);
		event_emit(&ev);
	}
}

static void
rollback_payment(Datum lock_ids, bool captured)
{
	static SPIPlanPtr refund_plan = NULL;
	static SPIPlanPtr void_plan = NULL;
	static const Oid types[1] = {INT8ARRAYOID};
	Datum		values[1] = {lock_ids};
	int			n;

	/* a captured authorisation is not voided: the refund covers it */
	if (captured)
		n = checkout_exec(&refund_plan,
						  "WITH c AS (INSERT INTO checkout.compensations (lock_id, kind, reference, amount) "
						  "           SELECT lock_id, 'refund_required', capture_reference, capture_amount "
						  "           FROM checkout.locks "
						  "           WHERE lock_id = ANY ($1) AND capture_reference IS NOT NULL "
						  "           RETURNING lock_id, reference, amount) "
						  "SELECT c.lock_id, l.cart_id, c.reference, c.amount "
						  "FROM c JOIN checkout.locks l ON l.lock_id = c.lock_id ORDER BY c.lock_id",
						  1, types, values, NULL, false, 0);
	else
		n = checkout_exec(&void_plan,
						  "WITH c AS (INSERT INTO checkout.compensations (lock_id, kind, reference, amount) "
						  "           SELECT lock_id, 'void_required', auth_reference, auth_amount "
						  "           FROM checkout.locks "
						  "           WHERE lock_id = ANY ($1) AND auth_reference IS NOT NULL "
						  "             AND capture_reference IS NULL "
						  "           RETURNING lock_id, reference, amount) "
						  "SELECT c.lock_id, l.cart_id, c.reference, c.amount "
						  "FROM c JOIN checkout.locks l ON l.lock_id = c.lock_id ORDER BY c.lock_id",
						  1, types, values, NULL, false, 0);
	if (n > 0)
		emit_compensation_events(SPI_tuptable, n, captured ? "refund_required" : "void_required");
}

void
rollback_refund_capture(Datum lock_ids)
{
	rollback_payment(lock_ids, true);
}

void
rollback_void_authorization(Datum lock_ids)
{
	rollback_payment(lock_ids, false);
}

void
rollback_cancel_order(Datum lock_ids)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8ARRAYOID};
	Datum		values[1] = {lock_ids};
	SPITupleTable *rows;
	int			n;
	int			i;

	n = checkout_exec(&plan,
					  "UPDATE checkout.orders SET status = 'cancelled', cancelled_at = pg_catalog.now() "
					  "WHERE lock_id = ANY ($1) AND status = 'created' "
					  "RETURNING lock_id, cart_id, order_ref",
					  1, types, values, NULL, false, 0);
	if (n == 0 || !event_wanted(EVC_ROLLBACKS, false))
		return;
	rows = SPI_tuptable;
	for (i = 0; i < n; i++)
	{
		CheckoutEvent ev;

		event_begin(&ev, EVC_ROLLBACKS, "rollback step completed",
					checkout_int8_cell(rows, i, 1, NULL), checkout_text_cell(rows, i, 2), false);
		event_add_text(&ev, "step", "order_cancelled");
		event_add_text(&ev, "order_ref", checkout_text_cell(rows, i, 3));
		event_emit(&ev);
	}
}

void
rollback_release_reservations(Datum lock_ids)
{
	stock_release(lock_ids);
}

/*
 * A payment the gateway holds but the lock refused (amount mismatch): the
 * application must still void or refund it.
 */
void
record_compensation(int64 lock_id, const char *cart_id, const char *kind,
					const char *reference, int64 amount)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {INT8OID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[4];

	values[0] = Int64GetDatum(lock_id);
	values[1] = CStringGetTextDatum(kind);
	values[2] = CStringGetTextDatum(reference);
	values[3] = Int64GetDatum(amount);
	checkout_exec(&plan,
				  "INSERT INTO checkout.compensations (lock_id, kind, reference, amount) "
				  "VALUES ($1, $2, $3, $4)",
				  4, types, values, NULL, false, 0);
	{
		CheckoutEvent ev;

		event_begin(&ev, EVC_FAILURES, "payment refused", lock_id, cart_id, true);
		ev.notify_name = kind;
		event_add_text(&ev, "compensation", kind);
		event_add_text(&ev, "reference", reference);
		event_add_int(&ev, "amount", amount);
		event_emit(&ev);
	}
}

/* ---- ending locks ---- */

/* Compensates every completed phase of the locks, last phase first. */
static void
rollback_locks(Datum lock_ids)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8ARRAYOID};
	Datum		values[1] = {lock_ids};
	int			phase;

	if (event_wanted(EVC_ROLLBACKS, false))
	{
		SPITupleTable *rows;
		int			n;
		int			i;

		n = checkout_exec(&plan,
						  "SELECT lock_id, cart_id, phase::text FROM checkout.locks "
						  "WHERE lock_id = ANY ($1) AND phase IS NOT NULL ORDER BY lock_id",
						  1, types, values, NULL, false, 0);
		rows = SPI_tuptable;
		for (i = 0; i < n; i++)
		{
			CheckoutEvent ev;

			event_begin(&ev, EVC_ROLLBACKS, "rollback started",
						checkout_int8_cell(rows, i, 1, NULL), checkout_text_cell(rows, i, 2), false);
			event_add_text(&ev, "from_phase", checkout_text_cell(rows, i, 3));
			event_emit(&ev);
		}
	}

	/* each compensation only touches locks that completed its phase */
	for (phase = PHASE_LAST; phase > PHASE_NONE; phase--)
	{
		PhaseRollbackFn fn = phase_rollback_fn((CheckoutPhase) phase);

		if (fn)
			fn(lock_ids);
	}
}

static void
record_end(Datum lock_ids, const char *state, CheckoutPhase failed_phase,
		   const char *error_code, const char *error_message)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[6] = {INT8ARRAYOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	SPITupleTable *rows;
	int			n;
	int			i;
	bool		failed = strcmp(state, "failed") == 0;
	bool		expired = strcmp(state, "expired") == 0;
	int			category = failed ? EVC_FAILURES : EVC_LIFECYCLE;

	values[0] = lock_ids;
	values[1] = CStringGetTextDatum(state);
	if (failed_phase > PHASE_NONE)
		values[2] = CStringGetTextDatum(phase_name(failed_phase));
	else
		nulls[2] = 'n';
	values[3] = BoolGetDatum(failed_phase == PHASE_PENDING);
	if (error_code)
		values[4] = CStringGetTextDatum(error_code);
	else
		nulls[4] = 'n';
	if (error_message)
		values[5] = CStringGetTextDatum(error_message);
	else
		nulls[5] = 'n';

	n = checkout_exec(&plan,
					  "UPDATE checkout.locks SET state = $2::checkout.lock_state, "
					  "  failed_phase = CASE WHEN $4 THEN "
					  "      CASE WHEN phase IS NULL THEN 'cart_validation'::checkout.phase "
					  "           ELSE (pg_catalog.enum_range(phase, NULL))[2] END "
					  "    ELSE $3::checkout.phase END, "
					  "  error_code = $5, error_message = $6, finished_at = pg_catalog.now() "
					  "WHERE lock_id = ANY ($1) "
					  "RETURNING lock_id, cart_id, failed_phase::text, phase::text, "
					  "  EXTRACT(EPOCH FROM finished_at - created_at)::bigint",
					  6, types, values, nulls, false, 0);

	if (!event_wanted(category, failed || expired))
		return;
	rows = SPI_tuptable;
	for (i = 0; i < n; i++)
	{
		CheckoutEvent ev;

		event_begin(&ev, category, state, checkout_int8_cell(rows, i, 1, NULL),
					checkout_text_cell(rows, i, 2), failed || expired);
		if (failed)
		{
			event_add_text(&ev, "phase", checkout_text_cell(rows, i, 3));
			event_add_text(&ev, "code", error_code);
			event_add_text(&ev, "detail", error_message);
		}
		else
		{
			event_add_text(&ev, "last_phase", checkout_text_cell(rows, i, 4));
			if (error_message)
				event_add_text(&ev, "reason", error_message);
		}
		event_add_int(&ev, "duration_seconds", checkout_int8_cell(rows, i, 5, NULL));
		event_emit(&ev);
	}
}

/*
 * Ends the locks (already row-locked by the caller): compensations in reverse
 * phase order, then state, failed_phase, error code and message.
 */
void
end_locks(Datum lock_ids, const char *state, CheckoutPhase failed_phase,
		  const char *error_code, const char *error_message)
{
	rollback_locks(lock_ids);
	record_end(lock_ids, state, failed_phase, error_code, error_message);
}

/*
 * Expires the locks (row-locked, overdue): paid ones roll forward to
 * completed, the rest roll back to expired.
 */
void
expire_locks(Datum lock_ids)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8ARRAYOID};
	Datum		values[1] = {lock_ids};
	int			n;
	int			i;
	int			n_paid = 0;
	int			n_unpaid = 0;
	int64	   *paid;
	int64	   *unpaid;

	n = checkout_exec(&plan,
					  "SELECT lock_id, capture_reference IS NOT NULL FROM checkout.locks "
					  "WHERE lock_id = ANY ($1) AND state = 'active'",
					  1, types, values, NULL, false, 0);
	paid = palloc(sizeof(int64) * Max(n, 1));
	unpaid = palloc(sizeof(int64) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		int64		id = checkout_int8_cell(SPI_tuptable, i, 1, NULL);

		if (checkout_bool_cell(SPI_tuptable, i, 2))
			paid[n_paid++] = id;
		else
			unpaid[n_unpaid++] = id;
	}
	if (n_paid > 0)
	{
		Datum		ids = checkout_int8_array(paid, n_paid);

		stock_commit(ids);
		mark_phase_completed(ids, PHASE_STOCK_COMMIT, true);
	}
	if (n_unpaid > 0)
		end_locks(checkout_int8_array(unpaid, n_unpaid), "expired", PHASE_PENDING,
				  CHECKOUT_EXPIRED, "checkout expired before it completed");
}

/*
 * One sweep batch: the due locks nobody is working on right now (SKIP
 * LOCKED: a lock a client is advancing is left for the next pass).
 */
int
checkout_expire_due(int batch)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT4OID};
	Datum		values[1] = {Int32GetDatum(batch)};
	int			n;
	int			i;
	int64	   *ids;

	n = checkout_exec(&plan,
					  "SELECT lock_id FROM checkout.locks "
					  "WHERE state = 'active' AND expires_at <= pg_catalog.now() "
					  "ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED",
					  1, types, values, NULL, false, 0);
	if (n == 0)
		return 0;
	ids = palloc(sizeof(int64) * n);
	for (i = 0; i < n; i++)
		ids[i] = checkout_int8_cell(SPI_tuptable, i, 1, NULL);
	expire_locks(checkout_int8_array(ids, n));
	return n;
}

bool
checkout_next_due(TimestampTz *next_due)
{
	static SPIPlanPtr plan = NULL;
	bool		isnull;
	Datum		d;

	checkout_exec(&plan,
				  "SELECT pg_catalog.min(expires_at) FROM checkout.locks WHERE state = 'active'",
				  0, NULL, NULL, NULL, false, 1);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return false;
	*next_due = DatumGetTimestampTz(d);
	return true;
}

int64
checkout_prune_events(int batch)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT4OID, INT4OID};
	Datum		values[2] = {Int32GetDatum(checkout_event_retention_s), Int32GetDatum(batch)};

	return checkout_exec(&plan,
						 "DELETE FROM checkout.events WHERE event_id IN ("
						 "  SELECT event_id FROM checkout.events "
						 "  WHERE logged_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1) "
						 "  LIMIT $2)",
						 2, types, values, NULL, false, 0);
}

PG_FUNCTION_INFO_V1(checkout_cleanup_expired);

Datum
checkout_cleanup_expired(PG_FUNCTION_ARGS)
{
	int			batch;
	int			n;

	require_arg(fcinfo, 0, "batch");
	batch = PG_GETARG_INT32(0);
	if (batch < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch must be at least 1")));
	SPI_connect();
	n = checkout_expire_due(batch);
	SPI_finish();
	PG_RETURN_INT32(n);
}
