/*
 * lifecycle.c — a lock's row and its end.
 *
 * This file is the only writer of checkout.locks: it creates a lock, writes
 * back what phase runners recorded (lock_save, once per call), and moves a
 * lock out of `active`: completed (after stock_commit, or rolled forward when
 * a paid lock expires), or failed / expired / cancelled with every completed
 * phase compensated in reverse order (locks_end).  The roll-forward rule
 * lives here too (lock_effective_state), used by the status a client sees
 * and by expiry alike.
 *
 * Concurrency: a call on an existing lock takes its row lock first (FOR
 * UPDATE, filtered on session_id so a wrong session never waits on, and so
 * never learns of, another session's busy lock); calls on one lock therefore
 * serialize.  Two starts of one cart race on the unique index over active
 * exclusive locks through INSERT ... ON CONFLICT DO NOTHING: the loser waits
 * for the winner's commit, inserts nothing and then sees the winner's lock.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "events.h"
#include "lifecycle.h"
#include "phases.h"
#include "rowwrite.h"
#include "util.h"

static const char *const lock_state_names[] = {
	[LOCK_ACTIVE] = "active",
	[LOCK_COMPLETED] = "completed",
	[LOCK_FAILED] = "failed",
	[LOCK_EXPIRED] = "expired",
	[LOCK_CANCELLED] = "cancelled",
};

const char *
lock_state_name(LockState state)
{
	return lock_state_names[state];
}

static LockState
lock_state_from_name(const char *name)
{
	int			s;

	for (s = 0; s < lengthof(lock_state_names); s++)
		if (strcmp(lock_state_names[s], name) == 0)
			return (LockState) s;
	elog(ERROR, "unknown checkout lock state \"%s\"", name);
	pg_unreachable();
}

/* ---- reading ---- */

#define LOCK_COLUMN_LIST \
	"lock_id, cart_id, session_id, state, phase, " \
	"created_at, expires_at, finished_at, total, order_ref, auth_reference, auth_amount, " \
	"capture_reference, capture_amount, failed_phase, " \
	"error_code, error_message "
#define LOCK_COLUMNS "SELECT " LOCK_COLUMN_LIST "FROM checkout.locks "

#define LOCK_COLUMN_NAMES \
	{"lock_id", "cart_id", "session_id", "state", "phase", "created_at", "expires_at", \
	 "finished_at", "total", "order_ref", "auth_reference", "auth_amount", \
	 "capture_reference", "capture_amount", "failed_phase", "error_code", "error_message"}

enum
{
	LC_LOCK_ID, LC_CART_ID, LC_SESSION_ID, LC_STATE, LC_PHASE, LC_CREATED_AT, LC_EXPIRES_AT,
	LC_FINISHED_AT, LC_TOTAL, LC_ORDER_REF, LC_AUTH_REFERENCE, LC_AUTH_AMOUNT,
	LC_CAPTURE_REFERENCE, LC_CAPTURE_AMOUNT, LC_FAILED_PHASE, LC_ERROR_CODE, LC_ERROR_MESSAGE,
	LC_COUNT
};

static const char *const lock_column_names[LC_COUNT] = LOCK_COLUMN_NAMES;

/*
 * A LockRow from the values of the lock columns, in LC_ order, as stored
 * (enums as enums): the one mapping of the table's columns to a LockRow,
 * whether they come from a statement or straight from the heap.
 */
static void
lock_row_from_values(const Datum *v, const bool *isnull, LockRow *row)
{
#define TEXT_AT(c) (isnull[c] ? NULL : TextDatumGetCString(v[c]))
#define INT8_AT(c) (isnull[c] ? 0 : DatumGetInt64(v[c]))
#define TIME_AT(c) (isnull[c] ? 0 : DatumGetTimestampTz(v[c]))
#define LABEL_AT(c) DatumGetCString(DirectFunctionCall1(enum_out, v[c]))
#define PHASE_AT(c) (isnull[c] ? PHASE_NONE : phase_from_name(LABEL_AT(c)))
	row->lock_id = INT8_AT(LC_LOCK_ID);
	row->cart_id = TEXT_AT(LC_CART_ID);
	row->session_id = TEXT_AT(LC_SESSION_ID);
	row->state = lock_state_from_name(LABEL_AT(LC_STATE));
	row->phase = PHASE_AT(LC_PHASE);
	row->created_at = TIME_AT(LC_CREATED_AT);
	row->expires_at = TIME_AT(LC_EXPIRES_AT);
	row->finished_at = TIME_AT(LC_FINISHED_AT);
	row->has_total = !isnull[LC_TOTAL];
	row->total = INT8_AT(LC_TOTAL);
	row->order_ref = TEXT_AT(LC_ORDER_REF);
	row->auth_reference = TEXT_AT(LC_AUTH_REFERENCE);
	row->auth_amount = INT8_AT(LC_AUTH_AMOUNT);
	row->capture_reference = TEXT_AT(LC_CAPTURE_REFERENCE);
	row->capture_amount = INT8_AT(LC_CAPTURE_AMOUNT);
	row->failed_phase = PHASE_AT(LC_FAILED_PHASE);
	row->error_code = TEXT_AT(LC_ERROR_CODE);
	row->error_message = TEXT_AT(LC_ERROR_MESSAGE);
	ItemPointerSetInvalid(&row->tid);
#undef TEXT_AT
#undef INT8_AT
#undef TIME_AT
#undef LABEL_AT
#undef PHASE_AT
}

static void
read_lock_row(Statement *st, SPITupleTable *tt, int i, LockRow *row)
{
	Datum		values[LC_COUNT];
	bool		isnull[LC_COUNT];
	int			c;

	for (c = 0; c < LC_COUNT; c++)
		values[c] = stmt_datum(st, tt, i, c, &isnull[c]);
	lock_row_from_values(values, isnull, row);
}

static int
fetch_rows(Statement *st, Datum *values, bool read_only, LockRow **rows)
{
	int			n = stmt_exec(st, values, NULL, read_only);
	SPITupleTable *tt = SPI_tuptable;
	int			i;

	*rows = palloc(sizeof(LockRow) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		read_lock_row(st, tt, i, &(*rows)[i]);
	}
	return n;
}

static bool
fetch_one(Statement *st, Datum *values, bool read_only, LockRow *row)
{
	LockRow    *rows;

	if (fetch_rows(st, values, read_only, &rows) == 0)
		return false;
	*row = rows[0];
	return true;
}

/*
 * Where lock_column_names are in checkout.locks: looked up by name once per
 * table (and again should its descriptor change), not per row.
 */
static const int *
lock_attnums(Relation rel)
{
	static Oid	relid = InvalidOid;
	static TupleDesc desc = NULL;
	static int	attnums[LC_COUNT];
	int			c;

	if (relid == RelationGetRelid(rel) && desc == RelationGetDescr(rel))
		return attnums;
	for (c = 0; c < LC_COUNT; c++)
	{
		attnums[c] = SPI_fnumber(RelationGetDescr(rel), lock_column_names[c]);
		if (attnums[c] <= 0)
		{
			relid = InvalidOid;
			elog(ERROR, "checkout: checkout.locks has no column \"%s\"", lock_column_names[c]);
		}
	}
	relid = RelationGetRelid(rel);
	desc = RelationGetDescr(rel);
	return attnums;
}

/* The lock's row from the columns of a tuple of checkout.locks. */
static void
lock_row_from_tuple(Relation rel, HeapTuple tuple, LockRow *row)
{
	const int  *attnums = lock_attnums(rel);
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *columns = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	Datum		values[LC_COUNT];
	bool		isnull[LC_COUNT];
	int			c;

	/* one pass over the tuple: with NULLs about, each heap_getattr starts over */
	heap_deform_tuple(tuple, desc, columns, nulls);
	for (c = 0; c < LC_COUNT; c++)
	{
		values[c] = columns[attnums[c] - 1];
		isnull[c] = nulls[attnums[c] - 1];
	}
	lock_row_from_values(values, isnull, row);
}

/*
 * The lock, row-locked (FOR UPDATE) for the rest of the transaction, if it
 * exists and (session_id not NULL) belongs to that session: another
 * session's lock is not locked.  Done without the executor (KeyAccess): it
 * is the first read of most calls.
 */
bool
lock_fetch(int64 lock_id, const char *session_id, LockRow *row)
{
	KeyAccess	ka;
	bool		found = false;

	key_open(&ka, "locks", RowShareLock);
	if (key_find(&ka, lock_attnums(ka.rel)[LC_LOCK_ID], F_INT8EQ, Int64GetDatum(lock_id)))
	{
		lock_row_from_tuple(ka.rel, ka.found, row);
		/* session_id never changes: the version found tells whose lock it is */
		if ((session_id == NULL || strcmp(row->session_id, session_id) == 0) &&
			key_lock(&ka, LockTupleExclusive))
		{
			bool		should_free;
			HeapTuple	locked = ExecFetchSlotHeapTuple(ka.slot, false, &should_free);

			lock_row_from_tuple(ka.rel, locked, row);
			row->tid = locked->t_self;
			found = true;
		}
	}
	key_close(&ka);
	return found;
}

/* The lock this session made with this idempotency key, row-locked. */
bool
lock_fetch_by_key(const char *session_id, const char *idempotency_key, LockRow *row)
{
	static Statement by_key = {
		.sql = LOCK_COLUMNS "WHERE session_id = $1 AND idempotency_key = $2 FOR UPDATE",
		.nargs = 2, .argtypes = {TEXTOID, TEXTOID}, .generic = true,
		.columns = LOCK_COLUMN_NAMES,
	};
	Datum		values[2] = {CStringGetTextDatum(session_id), CStringGetTextDatum(idempotency_key)};

	return fetch_one(&by_key, values, false, row);
}

/* The cart's active locks, row-locked in lock_id order. */
int
lock_fetch_cart(const char *cart_id, LockRow **rows)
{
	static Statement by_cart = {
		.sql = LOCK_COLUMNS "WHERE cart_id = $1 AND state = 'active' ORDER BY lock_id FOR UPDATE",
		.nargs = 1, .argtypes = {TEXTOID}, .generic = true,
		.columns = LOCK_COLUMN_NAMES,
	};
	Datum		values[1] = {CStringGetTextDatum(cart_id)};

	return fetch_rows(&by_cart, values, false, rows);
}

/*
 * The lock as the current snapshot sees it, read through the primary key
 * without the executor (checkout_status: a read that is most of its cost
 * when it goes through a planned statement).  Columns are found by name
 * (lock_column_names); false when the lock does not exist or belongs to
 * another session.
 */
bool
lock_read(int64 lock_id, const char *session_id, LockRow *row)
{
	KeyAccess	ka;
	bool		found = false;

	key_open_read(&ka, "locks");
	if (key_find(&ka, lock_attnums(ka.rel)[LC_LOCK_ID], F_INT8EQ, Int64GetDatum(lock_id)))
	{
		lock_row_from_tuple(ka.rel, ka.found, row);
		found = session_id == NULL || strcmp(row->session_id, session_id) == 0;
	}
	key_close(&ka);
	return found;
}

/*
 * Up to batch due locks that nobody is working on right now (SKIP LOCKED: a
 * lock a client is advancing is left for the next pass), row-locked.
 */
int
lock_fetch_due(int batch, LockRow **rows)
{
	static Statement due = {
		.sql = LOCK_COLUMNS "WHERE state = 'active' AND expires_at <= pg_catalog.now() "
		"ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED",
		.nargs = 1, .argtypes = {INT4OID},
		.columns = LOCK_COLUMN_NAMES,
	};
	Datum		values[1] = {Int32GetDatum(batch)};

	return fetch_rows(&due, values, false, rows);
}

bool
lock_next_due(TimestampTz *next_due)
{
	static Statement next = {
		.sql = "SELECT pg_catalog.min(expires_at) AS next_due FROM checkout.locks WHERE state = 'active'",
		.columns = {"next_due"},
	};

	stmt_exec(&next, NULL, NULL, true);
	if (stmt_isnull(&next, SPI_tuptable, 0, 0))
		return false;
	*next_due = stmt_timestamptz(&next, SPI_tuptable, 0, 0);
	return true;
}

/* Active and past its deadline, as of the transaction's start (now()). */
bool
lock_overdue(const LockRow *row)
{
	return row->state == LOCK_ACTIVE && row->expires_at <= GetCurrentTransactionStartTimestamp();
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
			 errhint("A lock is visible only to the session that started it.")));
}

void
raise_not_active(const LockRow *row)
{
	ereport(ERROR,
			(errcode(ERRCODE_CHECKOUT_LOCK_NOT_ACTIVE),
			 errmsg("checkout lock " INT64_FORMAT " is %s", row->lock_id,
					lock_state_name(lock_effective_state(row))),
			 errhint("Start a new checkout for cart %s.", quote_user_text(row->cart_id))));
}

/* ---- writing ---- */

static Datum
interval_from_seconds(double secs)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = (TimeOffset) (secs * USECS_PER_SEC);
	return IntervalPGetDatum(iv);
}

/*
 * The lock's lines, in cart order (line_no from 1): written without a
 * statement (rowwrite.c) unless the table runs code a user added.
 */
static void
lock_lines_write(int64 lock_id, const CartLines *cart)
{
	static Statement lines = {
		.sql = "INSERT INTO checkout.lock_lines (lock_id, line_no, line_id, sku, quantity, cart_price) "
		"SELECT $1, t.line_no, t.line_id, t.sku, t.quantity, t.price "
		"FROM ROWS FROM (pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[]), "
		"                pg_catalog.unnest($4::int8[]), pg_catalog.unnest($5::int8[])) "
		"     WITH ORDINALITY AS t(line_id, sku, quantity, price, line_no)",
		.nargs = 5,
		.argtypes = {INT8OID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID},
		.generic = true,
	};
	const char *names[6] = {"lock_id", "line_no", "line_id", "sku", "quantity", "cart_price"};
	RowWrite	w;
	int			columns[6];
	Datum		values[6];
	bool		isnull[6] = {false, false, false, false, false, false};
	int			i;

	if (!row_write_begin(&w, "lock_lines"))
	{
		values[0] = Int64GetDatum(lock_id);
		values[1] = text_array(cart->line_ids, cart->n);
		values[2] = text_array(cart->skus, cart->n);
		values[3] = int8_array(cart->quantities, cart->n);
		values[4] = int8_array(cart->prices, cart->n);
		stmt_exec(&lines, values, NULL, false);
		return;
	}
	for (i = 0; i < 6; i++)
		columns[i] = row_attnum(&w, names[i]);
	for (i = 0; i < cart->n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		values[0] = Int64GetDatum(lock_id);
		values[1] = Int32GetDatum(i + 1);
		values[2] = CStringGetTextDatum(cart->line_ids[i]);
		values[3] = CStringGetTextDatum(cart->skus[i]);
		values[4] = Int64GetDatum(cart->quantities[i]);
		values[5] = Int64GetDatum(cart->prices[i]);
		row_insert(&w, columns, values, isnull, 6);
	}
	row_write_end(&w);
}

/*
 * Inserts the lock, then its lines.  With checkout.prevent_concurrent on,
 * it inserts nothing (returns false) while the cart has an active lock, or
 * when a concurrent start took the cart first (ON CONFLICT): the caller then
 * looks at the cart's locks.
 */
bool
lock_create(const char *cart_id, const char *session_id, const char *idempotency_key,
			double ttl_secs, const CartLines *cart, LockRow *row)
{
	static Statement create = {
		.sql = "INSERT INTO checkout.locks "
		"  (cart_id, session_id, exclusive, idempotency_key, gateway, expires_at) "
		"SELECT $1, $2, $3, $4, $5, pg_catalog.now() + $6 "
		"WHERE NOT ($3 AND EXISTS (SELECT 1 FROM checkout.locks o "
		"                          WHERE o.cart_id = $1 AND o.state = 'active')) "
		"ON CONFLICT DO NOTHING RETURNING lock_id, created_at, expires_at",
		.nargs = 6,
		.argtypes = {TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID, INTERVALOID},
		.generic = true,
		.columns = {"lock_id", "created_at", "expires_at"},
	};
	Datum		values[6];
	char		nulls[6] = "      ";

	values[0] = CStringGetTextDatum(cart_id);
	values[1] = CStringGetTextDatum(session_id);
	values[2] = BoolGetDatum(checkout_prevent_concurrent);
	if (idempotency_key)
		values[3] = CStringGetTextDatum(idempotency_key);
	else
		nulls[3] = 'n';
	values[4] = CStringGetTextDatum(checkout_payment_gateway ? checkout_payment_gateway : "");
	values[5] = interval_from_seconds(ttl_secs);
	if (stmt_exec(&create, values, nulls, false) == 0)
		return false;

	memset(row, 0, sizeof(*row));
	row->lock_id = stmt_int8(&create, SPI_tuptable, 0, 0);
	row->created_at = stmt_timestamptz(&create, SPI_tuptable, 0, 1);
	row->expires_at = stmt_timestamptz(&create, SPI_tuptable, 0, 2);
	row->cart_id = pstrdup(cart_id);
	row->session_id = pstrdup(session_id);
	row->state = LOCK_ACTIVE;
	row->phase = PHASE_NONE;
	lock_lines_write(row->lock_id, cart);

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

/* The label of an enum column (attno counted from 0) as a value of its type. */
static Datum
enum_datum(TupleDesc desc, int attno, const char *label)
{
	return DirectFunctionCall2(enum_in, CStringGetDatum(label),
							   ObjectIdGetDatum(TupleDescAttr(desc, attno)->atttypid));
}

/* The columns a call changes, which lock_save writes back. */
static const int lock_saved_columns[] = {
	LC_STATE, LC_PHASE, LC_EXPIRES_AT, LC_FINISHED_AT, LC_TOTAL, LC_ORDER_REF,
	LC_AUTH_REFERENCE, LC_AUTH_AMOUNT, LC_CAPTURE_REFERENCE, LC_CAPTURE_AMOUNT,
	LC_FAILED_PHASE, LC_ERROR_CODE, LC_ERROR_MESSAGE
};

/*
 * lock_save without a statement: the version the call holds locked is
 * written over (rowwrite.c).  False when the call holds no version (the row
 * came from a statement) or the table runs code a user added.
 */
static bool
lock_save_direct(LockRow *row)
{
	RowWrite	w;
	const int  *attnums;
	TupleDesc	desc;
	int			columns[lengthof(lock_saved_columns)];
	Datum		values[lengthof(lock_saved_columns)];
	bool		isnull[lengthof(lock_saved_columns)];
	int			i;

	if (!ItemPointerIsValid(&row->tid) || !row_write_begin(&w, "locks"))
		return false;
	attnums = lock_attnums(w.rel);
	desc = RelationGetDescr(w.rel);
	for (i = 0; i < lengthof(lock_saved_columns); i++)
	{
		columns[i] = attnums[lock_saved_columns[i]];
		isnull[i] = false;
	}
#define SET_TEXT(i, v) do { if (v) values[i] = CStringGetTextDatum(v); else isnull[i] = true; } while (0)
#define SET_ENUM(i, v) do { if (v) values[i] = enum_datum(desc, columns[i] - 1, v); else isnull[i] = true; } while (0)
	SET_ENUM(0, lock_state_name(row->state));
	SET_ENUM(1, row->phase > PHASE_NONE ? phase_name(row->phase) : NULL);
	values[2] = TimestampTzGetDatum(row->expires_at);
	values[3] = TimestampTzGetDatum(row->finished_at);
	isnull[3] = row->state == LOCK_ACTIVE;
	values[4] = Int64GetDatum(row->total);
	isnull[4] = !row->has_total;
	SET_TEXT(5, row->order_ref);
	SET_TEXT(6, row->auth_reference);
	values[7] = Int64GetDatum(row->auth_amount);
	isnull[7] = row->auth_reference == NULL;
	SET_TEXT(8, row->capture_reference);
	values[9] = Int64GetDatum(row->capture_amount);
	isnull[9] = row->capture_reference == NULL;
	SET_ENUM(10, row->failed_phase > PHASE_NONE ? phase_name(row->failed_phase) : NULL);
	SET_TEXT(11, row->error_code);
	SET_TEXT(12, row->error_message);
#undef SET_TEXT
#undef SET_ENUM
	row_update(&w, &row->tid, columns, values, isnull, lengthof(lock_saved_columns));
	row_write_end(&w);
	return true;
}

/* Writes back what this call changed: one UPDATE of the lock's row. */
void
lock_save(LockRow *row)
{
	static Statement save = {
		.sql = "UPDATE checkout.locks SET state = $2::checkout.lock_state, "
		"  phase = $3::checkout.phase, expires_at = $4, finished_at = $5, total = $6, "
		"  order_ref = $7, auth_reference = $8, auth_amount = $9, "
		"  capture_reference = $10, capture_amount = $11, "
		"  failed_phase = $12::checkout.phase, error_code = $13, error_message = $14 "
		"WHERE lock_id = $1",
		.nargs = 14,
		.argtypes = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID,
			TEXTOID, TEXTOID, INT8OID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID},
		.generic = true,
	};
	Datum		values[14];
	char		nulls[14];

	if (lock_save_direct(row))
		return;
	memset(nulls, ' ', sizeof(nulls));
#define SET_TEXT(i, v) do { if (v) values[i] = CStringGetTextDatum(v); else nulls[i] = 'n'; } while (0)
	values[0] = Int64GetDatum(row->lock_id);
	values[1] = CStringGetTextDatum(lock_state_name(row->state));
	SET_TEXT(2, row->phase > PHASE_NONE ? phase_name(row->phase) : NULL);
	values[3] = TimestampTzGetDatum(row->expires_at);
	values[4] = TimestampTzGetDatum(row->finished_at);
	if (row->state == LOCK_ACTIVE)
		nulls[4] = 'n';
	values[5] = Int64GetDatum(row->total);
	if (!row->has_total)
		nulls[5] = 'n';
	SET_TEXT(6, row->order_ref);
	SET_TEXT(7, row->auth_reference);
	values[8] = Int64GetDatum(row->auth_amount);
	if (row->auth_reference == NULL)
		nulls[8] = 'n';
	SET_TEXT(9, row->capture_reference);
	values[10] = Int64GetDatum(row->capture_amount);
	if (row->capture_reference == NULL)
		nulls[10] = 'n';
	SET_TEXT(11, row->failed_phase > PHASE_NONE ? phase_name(row->failed_phase) : NULL);
	SET_TEXT(12, row->error_code);
	SET_TEXT(13, row->error_message);
#undef SET_TEXT
	if (stmt_exec(&save, values, nulls, false) != 1)
		elog(ERROR, "checkout lock " INT64_FORMAT " vanished", row->lock_id);
	/* the version the call held is no longer the row's latest */
	ItemPointerSetInvalid(&row->tid);
}

/* Pushes expires_at by by_secs, never past created_at + max_ttl nor backwards. */
void
lock_extend(LockRow *row, double by_secs)
{
	TimestampTz wanted = row->expires_at + (int64) (by_secs * USECS_PER_SEC);
	TimestampTz limit = row->created_at + (int64) checkout_max_ttl_s * USECS_PER_SEC;

	row->expires_at = Max(row->expires_at, Min(wanted, limit));
	lock_save(row);
	if (event_wanted(EV_EXTENDED))
	{
		CheckoutEvent ev;

		event_begin(&ev, EV_EXTENDED, row->lock_id, row->cart_id);
		event_add_time(&ev, "expires_at", row->expires_at);
		event_emit(&ev);
	}
}

/* ---- ending ---- */

/* A lock that completed stock_commit becomes completed: its row written back. */
void
lock_mark_completed(LockRow *row)
{
	Assert(row->phase == PHASE_LAST);
	row->state = LOCK_COMPLETED;
	row->finished_at = GetCurrentTransactionStartTimestamp();
	lock_save(row);
}

/* The "completed" event of a lock lock_mark_completed wrote (rolled_forward: by expiry). */
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
	event_add_raw(&ev, "duration_seconds", duration_seconds_text(row->created_at, row->finished_at));
	if (rolled_forward)
		event_add_raw(&ev, "completed_by_expiry", "true");
	event_emit(&ev);
}

/* Locks that completed stock_commit (rolled_forward: by expiry) become completed. */
void
locks_complete(LockRow *const *rows, int n, bool rolled_forward)
{
	int			i;

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
	LockRow   **done = palloc(sizeof(LockRow *) * Max(n, 1));
	int			phase;
	int			i;

	if (event_wanted(EV_ROLLBACK_STARTED))
	{
		for (i = 0; i < n; i++)
		{
			CheckoutEvent ev;

			if (rows[i]->phase == PHASE_NONE)
				continue;
			event_begin(&ev, EV_ROLLBACK_STARTED, rows[i]->lock_id, rows[i]->cart_id);
			event_add_text(&ev, "from_phase", phase_name(rows[i]->phase));
			event_emit(&ev);
		}
	}
	for (phase = PHASE_LAST; phase > PHASE_NONE; phase--)
	{
		const PhaseDef *def = phase_def((CheckoutPhase) phase);
		int			m = 0;

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
locks_end(LockRow *const *rows, int n, LockState state, CheckoutPhase failed_phase,
		  const char *error_code, const char *error_message)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	EventKind	event = state == LOCK_FAILED ? EV_FAILED
		: state == LOCK_EXPIRED ? EV_EXPIRED : EV_CANCELLED;
	int			i;

	Assert(state != LOCK_ACTIVE && state != LOCK_COMPLETED);
	roll_back(rows, n);
	for (i = 0; i < n; i++)
	{
		LockRow    *row = rows[i];

		CHECK_FOR_INTERRUPTS();
		row->state = state;
		row->finished_at = now;
		row->failed_phase = failed_phase != PHASE_PENDING ? failed_phase
			: (CheckoutPhase) Min(row->phase + 1, PHASE_LAST);
		row->error_code = error_code ? pstrdup(error_code) : NULL;
		row->error_message = error_message ? pstrdup(error_message) : NULL;
		lock_save(row);

		if (event_wanted(event))
		{
			CheckoutEvent ev;

			event_begin(&ev, event, row->lock_id, row->cart_id);
			if (state != LOCK_FAILED)
				event_add_text(&ev, "last_phase",
							   row->phase > PHASE_NONE ? phase_name(row->phase) : NULL);
			if (row->failed_phase > PHASE_NONE)
				event_add_text(&ev, "phase", phase_name(row->failed_phase));
			if (error_code)
				event_add_text(&ev, "code", error_code);
			if (error_message)
				event_add_text(&ev, state == LOCK_CANCELLED ? "reason" : "detail", error_message);
			event_add_raw(&ev, "duration_seconds", duration_seconds_text(row->created_at, now));
			event_emit(&ev);
		}
	}
}

/* ---- the status row ---- */

/* checkout.status of the lock, as its session sees it now. */
HeapTuple
lock_status_tuple(const LockRow *row, TupleDesc desc)
{
	Datum		values[10];
	bool		nulls[10];

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(row->lock_id);
	values[1] = CStringGetTextDatum(row->cart_id);
	values[2] = enum_datum(desc, 2, lock_state_name(lock_effective_state(row)));
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
	return heap_form_tuple(desc, values, nulls);
}
