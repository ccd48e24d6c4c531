/*
 * lock.c — the lock lifecycle API: checkout_start, checkout_status,
 * checkout_extend, checkout_cancel and the admin checkout_release.
 *
 * Concurrency: a call on an existing lock first takes its row lock
 * (SELECT ... FOR UPDATE), so calls on one lock serialize and each acts on
 * what the previous one left.  Two starts of one cart race on the unique
 * partial index locks_one_active_per_cart through INSERT ... ON CONFLICT DO
 * NOTHING: the loser waits for the winner's commit, inserts nothing, and then
 * sees the winner's lock (KC001, or re-entry for the same session), never a
 * unique violation.
 *
 * A lock is only visible to its own session: a wrong session gets the same
 * KC002 as an unknown lock, so lock ids cannot be probed.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "checkout.h"

PG_FUNCTION_INFO_V1(checkout_start);
PG_FUNCTION_INFO_V1(checkout_status);
PG_FUNCTION_INFO_V1(checkout_extend);
PG_FUNCTION_INFO_V1(checkout_cancel);
PG_FUNCTION_INFO_V1(checkout_release);

#define STATUS_ROW_SQL \
	"SELECT ROW(l.lock_id, l.cart_id, " \
	"  CASE WHEN l.state = 'active' AND l.expires_at <= pg_catalog.now() " \
	"       THEN CASE WHEN l.capture_reference IS NOT NULL THEN 'completed' ELSE 'expired' END::checkout.lock_state " \
	"       ELSE l.state END, " \
	"  l.phase, l.expires_at, l.total, l.order_ref, l.failed_phase, l.error_code, l.error_message" \
	")::checkout.status FROM checkout.locks l "

/* ---- argument checks ---- */

void
require_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be NULL", name)));
}

char *
require_text_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	char	   *value;

	require_arg(fcinfo, argno, name);
	value = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", name)));
	return value;
}

/* Interval length in seconds; months count as 30 days, as in interval arithmetic. */
static double
interval_seconds(const Interval *iv)
{
	return (double) iv->time / USECS_PER_SEC +
		(double) iv->day * SECS_PER_DAY +
		(double) iv->month * DAYS_PER_MONTH * SECS_PER_DAY;
}

static Datum
interval_from_seconds(double secs)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = (TimeOffset) (secs * USECS_PER_SEC);
	return IntervalPGetDatum(iv);
}

/* A positive interval argument, in seconds, capped at checkout.max_ttl. */
static double
positive_interval_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	double		secs = interval_seconds(PG_GETARG_INTERVAL_P(argno));

	if (secs <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a positive interval", name)));
	return Min(secs, (double) checkout_max_ttl_s);
}

/* ---- reading locks ---- */

#define LOCK_ROW_COLUMNS \
	"SELECT lock_id, cart_id, session_id, state::text, phase::text, " \
	"       expires_at <= pg_catalog.now(), capture_reference IS NOT NULL, " \
	"       total, auth_amount, order_ref FROM checkout.locks "

static void
read_lock_row(LockRow *row)
{
	char	   *phase;
	bool		isnull;

	row->lock_id = checkout_int8_cell(SPI_tuptable, 0, 1, NULL);
	row->cart_id = checkout_text_cell(SPI_tuptable, 0, 2);
	row->session_id = checkout_text_cell(SPI_tuptable, 0, 3);
	row->state = checkout_text_cell(SPI_tuptable, 0, 4);
	phase = checkout_text_cell(SPI_tuptable, 0, 5);
	row->phase = phase ? phase_from_name(phase) : PHASE_NONE;
	row->overdue = checkout_bool_cell(SPI_tuptable, 0, 6);
	row->captured = checkout_bool_cell(SPI_tuptable, 0, 7);
	row->total = checkout_int8_cell(SPI_tuptable, 0, 8, &isnull);
	row->has_total = !isnull;
	row->auth_amount = checkout_int8_cell(SPI_tuptable, 0, 9, &isnull);
	row->has_auth = !isnull;
	row->order_ref = checkout_text_cell(SPI_tuptable, 0, 10);
}

/* Locks the lock's row for this call; false when there is no such lock. */
bool
lock_fetch_for_update(int64 lock_id, LockRow *row)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(lock_id)};

	if (checkout_exec(&plan, LOCK_ROW_COLUMNS "WHERE lock_id = $1 FOR UPDATE",
					  1, types, values, NULL, false, 1) == 0)
		return false;
	read_lock_row(row);
	return true;
}

/* The lock, row-locked, if it exists and belongs to session_id; else KC002. */
void
lock_for_session(int64 lock_id, const char *session_id, LockRow *row)
{
	if (!lock_fetch_for_update(lock_id, row) || strcmp(row->session_id, session_id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECKOUT_LOCK_NOT_FOUND),
				 errmsg("checkout lock " INT64_FORMAT " not found", lock_id),
				 errhint("A lock is visible only to the session that started it.")));
}

bool
lock_is_active(const LockRow *row)
{
	return strcmp(row->state, "active") == 0;
}

void
raise_not_active(const LockRow *row)
{
	ereport(ERROR,
			(errcode(ERRCODE_CHECKOUT_LOCK_NOT_ACTIVE),
			 errmsg("checkout lock " INT64_FORMAT " is %s", row->lock_id, row->state),
			 errhint("Start a new checkout for cart \"%s\".", row->cart_id)));
}

/*
 * Expiry on touch: an active lock past its deadline is expired (rolled back,
 * or rolled forward when paid) before anything else happens to it.
 */
bool
expire_if_overdue(LockRow *row)
{
	if (!lock_is_active(row) || !row->overdue)
		return false;
	expire_locks(checkout_int8_array(&row->lock_id, 1));
	return true;
}

/* The lock's status row as a Datum in the caller's (pre-SPI) memory context. */
Datum
lock_status_datum(int64 lock_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(lock_id)};
	bool		isnull;
	Datum		d;

	if (checkout_exec(&plan, STATUS_ROW_SQL "WHERE l.lock_id = $1",
					  1, types, values, NULL, false, 1) != 1)
		elog(ERROR, "checkout lock " INT64_FORMAT " vanished", lock_id);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return SPI_datumTransfer(d, false, -1);
}

/* ---- checkout_start ---- */

static Datum
text_array(char **values, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * n);
	int			i;

	for (i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(values[i]);
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* The lock made with this idempotency key by this session, or 0. */
static int64
find_idempotent_lock(const char *session_id, const char *key, const char *cart_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(session_id), CStringGetTextDatum(key)};
	char	   *found_cart;

	if (checkout_exec(&plan,
					  "SELECT lock_id, cart_id FROM checkout.locks "
					  "WHERE session_id = $1 AND idempotency_key = $2",
					  2, types, values, NULL, false, 1) == 0)
		return 0;
	found_cart = checkout_text_cell(SPI_tuptable, 0, 2);
	if (strcmp(found_cart, cart_id) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("idempotency key \"%s\" was already used for cart \"%s\"", key, found_cart),
				 errhint("Use a new idempotency key for each checkout.")));
	return checkout_int8_cell(SPI_tuptable, 0, 1, NULL);
}

/*
 * Looks at the cart's active locks: expires overdue ones, returns this
 * session's live lock (re-entry) or raises KC001 for another session's.
 * Returns 0 when the cart is free for a new lock.
 */
static int64
claim_cart(const char *cart_id, const char *session_id)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(cart_id)};
	int			n;
	int			i;
	int			n_overdue = 0;
	int64	   *overdue;
	int64		mine = 0;
	int64		other = 0;

	n = checkout_exec(&plan,
					  "SELECT lock_id, session_id, expires_at <= pg_catalog.now() "
					  "FROM checkout.locks WHERE cart_id = $1 AND state = 'active' "
					  "ORDER BY lock_id FOR UPDATE",
					  1, types, values, NULL, false, 0);
	overdue = palloc(sizeof(int64) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		int64		id = checkout_int8_cell(SPI_tuptable, i, 1, NULL);

		if (checkout_bool_cell(SPI_tuptable, i, 3))
			overdue[n_overdue++] = id;
		else if (strcmp(checkout_text_cell(SPI_tuptable, i, 2), session_id) == 0)
			mine = mine ? mine : id;
		else
			other = other ? other : id;
	}
	if (n_overdue > 0)
		expire_locks(checkout_int8_array(overdue, n_overdue));
	if (mine)
		return mine;
	if (other && checkout_prevent_concurrent)
		ereport(ERROR,
				(errcode(ERRCODE_CHECKOUT_IN_PROGRESS),
				 errmsg("checkout already in progress for cart \"%s\"", cart_id),
				 errdetail("Another session holds the cart's active checkout lock."),
				 errhint("Wait for that checkout to finish or expire.")));
	return 0;
}

/* Inserts the lock and its lines; 0 when a concurrent start won the cart. */
static int64
insert_lock(const char *cart_id, const char *session_id, const char *idem_key,
			double ttl_secs, const CartLines *cart)
{
	static SPIPlanPtr lock_plan = NULL;
	static const Oid lock_types[6] = {TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID, INTERVALOID};
	static SPIPlanPtr lines_plan = NULL;
	static const Oid lines_types[5] = {INT8OID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	Datum		line_values[5];
	int64		lock_id;
	bool		isnull;
	TimestampTz expires_at;

	values[0] = CStringGetTextDatum(cart_id);
	values[1] = CStringGetTextDatum(session_id);
	values[2] = BoolGetDatum(checkout_prevent_concurrent);
	if (idem_key)
		values[3] = CStringGetTextDatum(idem_key);
	else
		nulls[3] = 'n';
	values[4] = CStringGetTextDatum(checkout_payment_gateway ? checkout_payment_gateway : "");
	values[5] = interval_from_seconds(ttl_secs);

	if (checkout_exec(&lock_plan,
					  "INSERT INTO checkout.locks "
					  "  (cart_id, session_id, exclusive, idempotency_key, gateway, expires_at) "
					  "VALUES ($1, $2, $3, $4, $5, pg_catalog.now() + $6) "
					  "ON CONFLICT DO NOTHING RETURNING lock_id, expires_at",
					  6, lock_types, values, nulls, false, 1) == 0)
		return 0;
	lock_id = checkout_int8_cell(SPI_tuptable, 0, 1, NULL);
	expires_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 2, &isnull));

	line_values[0] = Int64GetDatum(lock_id);
	line_values[1] = text_array(cart->line_ids, cart->n);
	line_values[2] = text_array(cart->skus, cart->n);
	line_values[3] = checkout_int8_array(cart->quantities, cart->n);
	line_values[4] = checkout_int8_array(cart->prices, cart->n);
	checkout_exec(&lines_plan,
				  "INSERT INTO checkout.lock_lines (lock_id, line_no, line_id, sku, quantity, cart_price) "
				  "SELECT $1, t.line_no, t.line_id, t.sku, t.quantity, t.price "
				  "FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), "
				  "               pg_catalog.unnest($4), pg_catalog.unnest($5)) WITH ORDINALITY "
				  "     AS t(line_id, sku, quantity, price, line_no)",
				  5, lines_types, line_values, NULL, false, 0);

	if (event_wanted(EVC_LIFECYCLE, false))
	{
		CheckoutEvent ev;

		event_begin(&ev, EVC_LIFECYCLE, "started", lock_id, cart_id, false);
		event_add_text(&ev, "session_id", session_id);
		event_add_int(&ev, "lines", cart->n);
		event_add_int(&ev, "cart_total", cart->total);
		event_add_int(&ev, "ttl_seconds", (int64) ttl_secs);
		event_add_text(&ev, "expires_at", timestamptz_to_str(expires_at));
		event_add_text(&ev, "gateway", checkout_payment_gateway);
		event_emit(&ev);
	}
	checkout_worker_wake(expires_at);
	return lock_id;
}

Datum
checkout_start(PG_FUNCTION_ARGS)
{
	char	   *cart_id = require_text_arg(fcinfo, 0, "cart_id");
	char	   *session_id = require_text_arg(fcinfo, 1, "session_id");
	char	   *idem_key = NULL;
	double		ttl_secs = Min((double) checkout_ttl_s, (double) checkout_max_ttl_s);
	CartLines	cart;
	int64		lock_id = 0;
	int			attempt;
	Datum		result;

	require_arg(fcinfo, 2, "lines");
	if (!PG_ARGISNULL(3))
		ttl_secs = positive_interval_arg(fcinfo, 3, "ttl");
	if (!PG_ARGISNULL(4))
		idem_key = require_text_arg(fcinfo, 4, "idempotency_key");
	parse_cart_lines(PG_GETARG_JSONB_P(2), &cart);

	SPI_connect();

	/*
	 * A lost race for the cart (ON CONFLICT DO NOTHING) means another start
	 * committed in between: look again, now seeing its lock.
	 */
	for (attempt = 0; attempt < 3 && lock_id == 0; attempt++)
	{
		LockRow		row;

		if (idem_key && (lock_id = find_idempotent_lock(session_id, idem_key, cart_id)) != 0)
		{
			if (lock_fetch_for_update(lock_id, &row))
				expire_if_overdue(&row);
			break;
		}
		if ((lock_id = claim_cart(cart_id, session_id)) != 0)
			break;
		lock_id = insert_lock(cart_id, session_id, idem_key, ttl_secs, &cart);
	}
	if (lock_id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECKOUT_IN_PROGRESS),
				 errmsg("checkout already in progress for cart \"%s\"", cart_id),
				 errdetail("Concurrent checkouts kept claiming the cart.")));

	result = lock_status_datum(lock_id);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/* ---- checkout_status: read-only, so it works on a hot standby ---- */

Datum
checkout_status(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[2] = {INT8OID, TEXTOID};
	int64		lock_id;
	char	   *session_id;
	Datum		values[2];
	bool		isnull;
	Datum		result;

	require_arg(fcinfo, 0, "lock_id");
	lock_id = PG_GETARG_INT64(0);
	session_id = require_text_arg(fcinfo, 1, "session_id");
	values[0] = Int64GetDatum(lock_id);
	values[1] = CStringGetTextDatum(session_id);

	SPI_connect();
	if (checkout_exec(&plan, STATUS_ROW_SQL "WHERE l.lock_id = $1 AND l.session_id = $2",
					  2, types, values, NULL, true, 1) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECKOUT_LOCK_NOT_FOUND),
				 errmsg("checkout lock " INT64_FORMAT " not found", lock_id),
				 errhint("A lock is visible only to the session that started it.")));
	result = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
							   false, -1);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/* ---- checkout_extend ---- */

Datum
checkout_extend(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[3] = {INT8OID, INTERVALOID, INTERVALOID};
	int64		lock_id;
	char	   *session_id;
	double		by_secs;
	LockRow		row;
	Datum		values[3];
	Datum		result;

	require_arg(fcinfo, 0, "lock_id");
	lock_id = PG_GETARG_INT64(0);
	session_id = require_text_arg(fcinfo, 1, "session_id");
	require_arg(fcinfo, 2, "by");
	by_secs = positive_interval_arg(fcinfo, 2, "by");

	SPI_connect();
	lock_for_session(lock_id, session_id, &row);
	if (!expire_if_overdue(&row))
	{
		if (!lock_is_active(&row))
			raise_not_active(&row);
		values[0] = Int64GetDatum(lock_id);
		values[1] = interval_from_seconds(by_secs);
		values[2] = interval_from_seconds((double) checkout_max_ttl_s);
		/* never past created_at + max_ttl, and never earlier than it was */
		checkout_exec(&plan,
					  "UPDATE checkout.locks SET expires_at = "
					  "  GREATEST(expires_at, LEAST(expires_at + $2, created_at + $3)) "
					  "WHERE lock_id = $1 RETURNING expires_at",
					  3, types, values, NULL, false, 0);
		if (event_wanted(EVC_LIFECYCLE, false))
		{
			CheckoutEvent ev;

			event_begin(&ev, EVC_LIFECYCLE, "extended", lock_id, row.cart_id, false);
			event_add_text(&ev, "expires_at", checkout_text_cell(SPI_tuptable, 0, 1));
			event_emit(&ev);
		}
	}
	result = lock_status_datum(lock_id);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/* ---- checkout_cancel / checkout_release ---- */

/*
 * Ends the session's active lock with rollback (cancel, checkout_fail); an
 * overdue lock is expired instead.  Returns its status row.
 */
Datum
end_session_lock(int64 lock_id, const char *session_id, const char *state,
				 CheckoutPhase failed_phase, const char *error_code, const char *error_message)
{
	LockRow		row;
	Datum		result;

	SPI_connect();
	lock_for_session(lock_id, session_id, &row);
	if (!expire_if_overdue(&row))
	{
		if (!lock_is_active(&row))
			raise_not_active(&row);
		end_locks(checkout_int8_array(&lock_id, 1), state, failed_phase, error_code, error_message);
	}
	result = lock_status_datum(lock_id);
	SPI_finish();
	return result;
}

Datum
checkout_cancel(PG_FUNCTION_ARGS)
{
	int64		lock_id;
	char	   *session_id;

	require_arg(fcinfo, 0, "lock_id");
	lock_id = PG_GETARG_INT64(0);
	session_id = require_text_arg(fcinfo, 1, "session_id");
	PG_RETURN_DATUM(end_session_lock(lock_id, session_id, "cancelled", PHASE_NONE, NULL, NULL));
}

Datum
checkout_release(PG_FUNCTION_ARGS)
{
	int64		lock_id;
	char	   *reason;
	char	   *message;
	LockRow		row;
	Datum		result;

	require_arg(fcinfo, 0, "lock_id");
	lock_id = PG_GETARG_INT64(0);
	reason = require_text_arg(fcinfo, 1, "reason");
	/* the function runs as its owner; name the admin who called it */
	message = psprintf("released by %s: %s",
					   GetUserNameFromId(GetOuterUserId(), false), reason);

	SPI_connect();
	if (!lock_fetch_for_update(lock_id, &row))
		ereport(ERROR,
				(errcode(ERRCODE_CHECKOUT_LOCK_NOT_FOUND),
				 errmsg("checkout lock " INT64_FORMAT " not found", lock_id)));
	if (!lock_is_active(&row))
		raise_not_active(&row);
	end_locks(checkout_int8_array(&lock_id, 1), "cancelled", PHASE_NONE, NULL, message);
	result = lock_status_datum(lock_id);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
