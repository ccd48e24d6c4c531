/*
 * store.c — the one owner of the extension's tables: every key read, row
 * lock and row write of checkout.locks, lock_lines, inventory,
 * reservations, price_snapshots, orders, compensations and payment_metadata
 * goes through a call here, named in the domain.  (checkout.events belongs
 * to events.c, which only ever inserts and prunes it with SQL.)
 *
 * The calls a checkout makes most have two ways, side by side: straight to
 * the rows (direct.c: no plan, no executor start) and a SQL statement.  Each
 * call asks direct.c whether the direct way may serve every table it
 * touches (the table exactly as the extension made it, the privilege held,
 * no permission hook, checkout.direct_access on) and otherwise runs its
 * statement, so the rows, errors and row locks are the same either way.
 * Row versions (RowVersion) stay in here: a caller holds them as opaque
 * pointers, to give back to the call that writes over them.
 *
 * Statements name every object with its schema; they run with search_path
 * pinned to pg_catalog (checkout_spi_connect), so their operators resolve
 * there whatever the caller's search_path.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "direct.h"
#include "store.h"
#include "util.h"

PG_FUNCTION_INFO_V1(checkout_table_access);

/* A row version a call read or locked, to write over later. */
typedef struct RowVersion
{
	ItemPointerData tid;
	bool		locked;			/* by this transaction: the row's latest */
} RowVersion;

static RowVersion *
version_of(TupleTableSlot *slot, bool locked)
{
	RowVersion *v = palloc(sizeof(RowVersion));

	v->tid = *slot_tid(slot);
	v->locked = locked;
	return v;
}

/* ---- locks ---- */

#define LOCK_COLUMN_LIST \
	"lock_id, cart_id, session_id, state, phase, exclusive, idempotency_key, gateway, " \
	"created_at, expires_at, finished_at, total, order_ref, auth_reference, auth_amount, " \
	"capture_reference, capture_amount, failed_phase, error_code, error_message "
#define LOCK_COLUMNS "SELECT " LOCK_COLUMN_LIST "FROM checkout.locks "
/* in the order of the LK_ columns */
#define LOCK_COLUMN_NAMES \
	{"lock_id", "cart_id", "session_id", "state", "phase", "exclusive", "idempotency_key", \
	 "gateway", "created_at", "expires_at", "finished_at", "total", "order_ref", \
	 "auth_reference", "auth_amount", "capture_reference", "capture_amount", "failed_phase", \
	 "error_code", "error_message"}

/*
 * A LockRow from the lock columns' values, in LK_ order, as stored (enums
 * as enums): the one mapping of the table's columns to a LockRow, whether
 * they come from a statement or straight from the heap.
 */
static void
lock_row_from_values(const Datum *v, const bool *isnull, LockRow *row)
{
#define TEXT_AT(c) (isnull[c] ? NULL : TextDatumGetCString(v[c]))
#define INT8_AT(c) (isnull[c] ? 0 : DatumGetInt64(v[c]))
#define TIME_AT(c) (isnull[c] ? 0 : DatumGetTimestampTz(v[c]))
#define LABEL_AT(c) DatumGetCString(DirectFunctionCall1(enum_out, v[c]))
#define PHASE_AT(c) (isnull[c] ? PHASE_NONE : phase_from_name(LABEL_AT(c)))
	row->lock_id = INT8_AT(LK_LOCK_ID);
	row->cart_id = TEXT_AT(LK_CART_ID);
	row->session_id = TEXT_AT(LK_SESSION_ID);
	row->state = lock_state_from_name(LABEL_AT(LK_STATE));
	row->phase = PHASE_AT(LK_PHASE);
	row->created_at = TIME_AT(LK_CREATED_AT);
	row->expires_at = TIME_AT(LK_EXPIRES_AT);
	row->finished_at = TIME_AT(LK_FINISHED_AT);
	row->has_total = !isnull[LK_TOTAL];
	row->total = INT8_AT(LK_TOTAL);
	row->order_ref = TEXT_AT(LK_ORDER_REF);
	row->auth_reference = TEXT_AT(LK_AUTH_REFERENCE);
	row->auth_amount = INT8_AT(LK_AUTH_AMOUNT);
	row->capture_reference = TEXT_AT(LK_CAPTURE_REFERENCE);
	row->capture_amount = INT8_AT(LK_CAPTURE_AMOUNT);
	row->failed_phase = PHASE_AT(LK_FAILED_PHASE);
	row->error_code = TEXT_AT(LK_ERROR_CODE);
	row->error_message = TEXT_AT(LK_ERROR_MESSAGE);
	row->version = NULL;
#undef TEXT_AT
#undef INT8_AT
#undef TIME_AT
#undef LABEL_AT
#undef PHASE_AT
}

static void
lock_row_from_slot(KeyScan *ks, TupleTableSlot *slot, LockRow *row)
{
	Datum		values[LK_NCOLUMNS];
	bool		isnull[LK_NCOLUMNS];
	int			c;

	for (c = 0; c < LK_NCOLUMNS; c++)
		values[c] = slot_column(ks, slot, c, &isnull[c]);
	lock_row_from_values(values, isnull, row);
}

static int
fetch_rows(Statement *st, Datum *values, const char *nulls, bool read_only, LockRow **rows)
{
	int			n = stmt_exec(st, values, nulls, read_only);
	SPITupleTable *tt = SPI_tuptable;
	int			i;

	*rows = palloc(sizeof(LockRow) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		Datum		v[LK_NCOLUMNS];
		bool		isnull[LK_NCOLUMNS];
		int			c;

		CHECK_FOR_INTERRUPTS();
		for (c = 0; c < LK_NCOLUMNS; c++)
			v[c] = stmt_datum(st, tt, i, c, &isnull[c]);
		lock_row_from_values(v, isnull, &(*rows)[i]);
	}
	return n;
}

static bool
fetch_one(Statement *st, Datum *values, const char *nulls, bool read_only, LockRow *row)
{
	LockRow    *rows;

	if (fetch_rows(st, values, nulls, read_only, &rows) == 0)
		return false;
	*row = rows[0];
	return true;
}

/*
 * The lock, row-locked (FOR UPDATE) for the rest of the transaction, if it
 * exists and (session_id not NULL) belongs to that session: another
 * session's lock is not locked, and so never waited on.
 */
bool
store_lock_fetch(int64 lock_id, const char *session_id, LockRow *row)
{
	static Statement fetch = {
		.sql = LOCK_COLUMNS "WHERE lock_id = $1 AND ($2::text IS NULL OR session_id = $2) "
		"FOR UPDATE",
		.nargs = 2, .argtypes = {INT8OID, TEXTOID}, .generic = true,
		.columns = LOCK_COLUMN_NAMES,
	};
	KeyScan		ks;
	bool		found = false;

	if (key_open(&ks, DT_LOCKS, ACL_SELECT | ACL_UPDATE, true))
	{
		if (key_find(&ks, Int64GetDatum(lock_id)))
		{
			lock_row_from_slot(&ks, ks.found, row);
			/* session_id never changes: the version found tells whose lock it is */
			if ((session_id == NULL || strcmp(row->session_id, session_id) == 0) &&
				key_lock(&ks, LockTupleExclusive))
			{
				lock_row_from_slot(&ks, ks.locked, row);
				row->version = version_of(ks.locked, true);
				found = true;
			}
		}
		key_close(&ks);
	}
	else
	{
		Datum		values[2] = {Int64GetDatum(lock_id), (Datum) 0};
		char		nulls[2] = {' ', session_id ? ' ' : 'n'};

		if (session_id)
			values[1] = CStringGetTextDatum(session_id);
		found = fetch_one(&fetch, values, nulls, false, row);
	}
	return found;
}

/*
 * The lock as the calling query's snapshot sees it (checkout_status, which
 * may run on a hot standby); false when it does not exist or belongs to
 * another session.  Connects to SPI itself when it goes through SQL.
 */
bool
store_lock_read(int64 lock_id, const char *session_id, LockRow *row)
{
	static Statement read = {
		.sql = LOCK_COLUMNS "WHERE lock_id = $1",
		.nargs = 1, .argtypes = {INT8OID}, .generic = true,
		.columns = LOCK_COLUMN_NAMES,
	};
	KeyScan		ks;
	bool		found = false;

	if (key_open(&ks, DT_LOCKS, ACL_SELECT, false))
	{
		if (key_find(&ks, Int64GetDatum(lock_id)))
		{
			lock_row_from_slot(&ks, ks.found, row);
			found = true;
		}
		key_close(&ks);
	}
	else
	{
		MemoryContext caller = CurrentMemoryContext;
		Datum		values[1] = {Int64GetDatum(lock_id)};
		int			guc_level = checkout_spi_connect();

		if (stmt_exec(&read, values, NULL, true) > 0)
		{
			/* the row outlives SPI: build it in the caller's memory */
			MemoryContext spi = MemoryContextSwitchTo(caller);
			Datum		v[LK_NCOLUMNS];
			bool		isnull[LK_NCOLUMNS];
			int			c;

			for (c = 0; c < LK_NCOLUMNS; c++)
				v[c] = stmt_datum(&read, SPI_tuptable, 0, c, &isnull[c]);
			lock_row_from_values(v, isnull, row);
			MemoryContextSwitchTo(spi);
			found = true;
		}
		checkout_spi_finish(guc_level);
	}
	return found && (session_id == NULL || strcmp(row->session_id, session_id) == 0);
}

/* The lock this session made with this idempotency key, row-locked. */
bool
store_lock_fetch_by_key(const char *session_id, const char *idempotency_key, LockRow *row)
{
	static Statement by_key = {
		.sql = LOCK_COLUMNS "WHERE session_id = $1 AND idempotency_key = $2 FOR UPDATE",
		.nargs = 2, .argtypes = {TEXTOID, TEXTOID}, .generic = true,
		.columns = LOCK_COLUMN_NAMES,
	};
	Datum		values[2] = {CStringGetTextDatum(session_id), CStringGetTextDatum(idempotency_key)};

	return fetch_one(&by_key, values, NULL, false, row);
}

/* The cart's active locks, row-locked in lock_id order. */
int
store_locks_of_cart(const char *cart_id, LockRow **rows)
{
	static Statement by_cart = {
		.sql = LOCK_COLUMNS "WHERE cart_id = $1 AND state = 'active' ORDER BY lock_id FOR UPDATE",
		.nargs = 1, .argtypes = {TEXTOID}, .generic = true,
		.columns = LOCK_COLUMN_NAMES,
	};
	Datum		values[1] = {CStringGetTextDatum(cart_id)};

	return fetch_rows(&by_cart, values, NULL, false, rows);
}

/*
 * Up to batch due locks that nobody is working on right now (SKIP LOCKED: a
 * lock a client is advancing is left for the next pass), row-locked.
 */
int
store_locks_due(int batch, LockRow **rows)
{
	static Statement due = {
		.sql = LOCK_COLUMNS "WHERE state = 'active' AND expires_at <= pg_catalog.now() "
		"ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED",
		.nargs = 1, .argtypes = {INT4OID},
		.columns = LOCK_COLUMN_NAMES,
	};
	Datum		values[1] = {Int32GetDatum(batch)};

	return fetch_rows(&due, values, NULL, false, rows);
}

/* The earliest deadline of an active lock; false when none is active. */
bool
store_next_due(TimestampTz *next_due)
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

/* Whether the cart has an active lock before its deadline (checkout.protect_cart). */
bool
store_cart_has_live_lock(const char *cart_id)
{
	static Statement live_lock = {
		.sql = "SELECT 1 FROM checkout.locks "
		"WHERE cart_id = $1 AND state = 'active' AND expires_at > pg_catalog.now() LIMIT 1",
		.nargs = 1,
		.argtypes = {TEXTOID},
		.generic = true,
	};
	Datum		values[1] = {CStringGetTextDatum(cart_id)};

	return stmt_exec(&live_lock, values, NULL, true) > 0;
}

static Datum
interval_from_seconds(double secs)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = (TimeOffset) (secs * USECS_PER_SEC);
	return IntervalPGetDatum(iv);
}

/*
 * Inserts the lock's row: nothing (false) when `exclusive` and the cart has
 * an active lock, or when a concurrent start took the cart first (ON
 * CONFLICT waits for it and answers nothing: the caller looks at the cart's
 * locks).  Always a statement: its speculative insertion is what makes a
 * racing start wait and see the winner.
 */
bool
store_lock_insert(const char *cart_id, const char *session_id, const char *idempotency_key,
				  bool exclusive, const char *gateway, double ttl_secs, LockRow *row)
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
	values[2] = BoolGetDatum(exclusive);
	if (idempotency_key)
		values[3] = CStringGetTextDatum(idempotency_key);
	else
		nulls[3] = 'n';
	values[4] = CStringGetTextDatum(gateway);
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
	return true;
}

/* The lock's lines, in cart order (line_no from 1). */
void
store_lines_insert(int64 lock_id, const CartLines *cart)
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
	static const int columns[6] = {LL_LOCK_ID, LL_LINE_NO, LL_LINE_ID, LL_SKU, LL_QUANTITY,
	LL_CART_PRICE};
	RowWrite	w;
	Datum		values[6];
	bool		isnull[6] = {false, false, false, false, false, false};
	int			i;

	if (!row_write_begin(&w, DT_LOCK_LINES, ACL_INSERT))
	{
		values[0] = Int64GetDatum(lock_id);
		values[1] = text_array(cart->line_ids, cart->n);
		values[2] = text_array(cart->skus, cart->n);
		values[3] = int8_array(cart->quantities, cart->n);
		values[4] = int8_array(cart->prices, cart->n);
		stmt_exec(&lines, values, NULL, false);
		return;
	}
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

/* An enum label as a value of the type of the column written. */
static Datum
enum_value(RowWrite *w, int column, const char *label)
{
	return DirectFunctionCall2(enum_in, CStringGetDatum(label),
							   ObjectIdGetDatum(row_column_type(w, column)));
}

/*
 * Writes back what this call changed: over the version the call holds
 * locked when it has one, else one UPDATE; either way the row's latest
 * version is what the call holds afterwards (or none, after a statement).
 */
void
store_lock_save(LockRow *row)
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
	/* the columns a call changes, in the statement's order ($2 ...) */
	static const int columns[13] = {
		LK_STATE, LK_PHASE, LK_EXPIRES_AT, LK_FINISHED_AT, LK_TOTAL, LK_ORDER_REF,
		LK_AUTH_REFERENCE, LK_AUTH_AMOUNT, LK_CAPTURE_REFERENCE, LK_CAPTURE_AMOUNT,
		LK_FAILED_PHASE, LK_ERROR_CODE, LK_ERROR_MESSAGE
	};
	const char *phase = row->phase > PHASE_NONE ? phase_name(row->phase) : NULL;
	const char *failed = row->failed_phase > PHASE_NONE ? phase_name(row->failed_phase) : NULL;
	Datum		values[14];
	bool		isnull[14];
	RowWrite	w;
	int			i;

	memset(isnull, 0, sizeof(isnull));
#define SET_TEXT(i, v) do { if (v) values[i] = CStringGetTextDatum(v); else isnull[i] = true; } while (0)
	values[0] = Int64GetDatum(row->lock_id);
	values[3] = TimestampTzGetDatum(row->expires_at);
	values[4] = TimestampTzGetDatum(row->finished_at);
	isnull[4] = row->state == LOCK_ACTIVE;
	values[5] = Int64GetDatum(row->total);
	isnull[5] = !row->has_total;
	SET_TEXT(6, row->order_ref);
	SET_TEXT(7, row->auth_reference);
	values[8] = Int64GetDatum(row->auth_amount);
	isnull[8] = row->auth_reference == NULL;
	SET_TEXT(9, row->capture_reference);
	values[10] = Int64GetDatum(row->capture_amount);
	isnull[10] = row->capture_reference == NULL;
	SET_TEXT(12, row->error_code);
	SET_TEXT(13, row->error_message);

	if (row->version != NULL && row->version->locked &&
		row_write_begin(&w, DT_LOCKS, ACL_UPDATE))
	{
		values[1] = enum_value(&w, LK_STATE, lock_state_name(row->state));
		isnull[2] = phase == NULL;
		if (phase)
			values[2] = enum_value(&w, LK_PHASE, phase);
		isnull[11] = failed == NULL;
		if (failed)
			values[11] = enum_value(&w, LK_FAILED_PHASE, failed);
		row_update(&w, &row->version->tid, columns, values + 1, isnull + 1, 13);
		row_write_end(&w);
		return;
	}

	/* the statement's enum parameters are text, cast in the statement */
	values[1] = CStringGetTextDatum(lock_state_name(row->state));
	SET_TEXT(2, phase);
	SET_TEXT(11, failed);
#undef SET_TEXT
	{
		char		nulls[14];

		for (i = 0; i < 14; i++)
			nulls[i] = isnull[i] ? 'n' : ' ';
		if (stmt_exec(&save, values, nulls, false) != 1)
			elog(ERROR, "checkout lock " INT64_FORMAT " vanished", row->lock_id);
	}
	/* the version the call held is no longer the row's latest */
	row->version = NULL;
}

/*
 * Whether writing price snapshots or a lock's row can run code a user
 * added (a trigger of theirs, a rule): a late reservation must not let it
 * run before the reservation is decided.
 */
bool
store_lock_writes_run_user_code(void)
{
	return direct_runs_user_code(DT_PRICE_SNAPSHOTS) || direct_runs_user_code(DT_LOCKS);
}

/* ---- a lock's cart lines and the stock ledger ---- */

/* The lock's lines (in no particular order). */
int
store_cart_lines(int64 lock_id, CartLine **lines)
{
	static Statement read = {
		.sql = "SELECT line_no, line_id, sku, quantity, cart_price FROM checkout.lock_lines "
		"WHERE lock_id = $1",
		.nargs = 1, .argtypes = {INT8OID}, .generic = true,
		.columns = {"line_no", "line_id", "sku", "quantity", "cart_price"},
	};
	KeyScan		ks;
	int			cap = 8;
	int			n = 0;

	*lines = palloc(sizeof(CartLine) * cap);
	if (key_open(&ks, DT_LOCK_LINES, ACL_SELECT, true))
	{
		key_scan(&ks, Int64GetDatum(lock_id));
		while (key_next(&ks))
		{
			CartLine   *line;
			bool		isnull;

			CHECK_FOR_INTERRUPTS();
			if (n == cap)
			{
				cap *= 2;
				*lines = repalloc(*lines, sizeof(CartLine) * cap);
			}
			line = &(*lines)[n++];
			line->line_no = DatumGetInt32(slot_column(&ks, ks.found, LL_LINE_NO, &isnull));
			line->line_id = TextDatumGetCString(slot_column(&ks, ks.found, LL_LINE_ID, &isnull));
			line->sku = TextDatumGetCString(slot_column(&ks, ks.found, LL_SKU, &isnull));
			line->quantity = DatumGetInt64(slot_column(&ks, ks.found, LL_QUANTITY, &isnull));
			line->cart_price = DatumGetInt64(slot_column(&ks, ks.found, LL_CART_PRICE, &isnull));
		}
		key_close(&ks);
	}
	else
	{
		Datum		values[1] = {Int64GetDatum(lock_id)};
		SPITupleTable *tt;
		int			i;

		n = stmt_exec(&read, values, NULL, false);
		tt = SPI_tuptable;
		*lines = repalloc(*lines, sizeof(CartLine) * Max(n, 1));
		for (i = 0; i < n; i++)
		{
			CartLine   *line = &(*lines)[i];

			CHECK_FOR_INTERRUPTS();
			line->line_no = (int32) stmt_int8(&read, tt, i, 0);
			line->line_id = stmt_text(&read, tt, i, 1);
			line->sku = stmt_text(&read, tt, i, 2);
			line->quantity = stmt_int8(&read, tt, i, 3);
			line->cart_price = stmt_int8(&read, tt, i, 4);
		}
	}
	return n;
}

/* The first line (in cart order) whose sku is not in the inventory. */
bool
store_first_unknown_line(int64 lock_id, char **line_id, char **sku)
{
	static Statement unknown = {
		.sql = "SELECT l.line_id, l.sku FROM checkout.lock_lines l "
		"WHERE l.lock_id = $1 AND NOT EXISTS "
		"  (SELECT 1 FROM checkout.inventory i WHERE i.sku = l.sku) "
		"ORDER BY l.line_no LIMIT 1",
		.nargs = 1,
		.argtypes = {INT8OID},
		.columns = {"line_id", "sku"},
	};
	Datum		values[1] = {Int64GetDatum(lock_id)};

	if (stmt_exec(&unknown, values, NULL, false) == 0)
		return false;
	*line_id = stmt_text(&unknown, SPI_tuptable, 0, 0);
	*sku = stmt_text(&unknown, SPI_tuptable, 0, 1);
	return true;
}

static void
ledger_row_from_slot(KeyScan *ks, TupleTableSlot *slot, LedgerRow *row, bool locked)
{
	bool		isnull;

	row->found = true;
	row->on_hand = DatumGetInt64(slot_column(ks, slot, INV_ON_HAND, &isnull));
	row->reserved = DatumGetInt64(slot_column(ks, slot, INV_RESERVED, &isnull));
	row->unit_price = DatumGetInt64(slot_column(ks, slot, INV_UNIT_PRICE, &isnull));
	row->version = version_of(slot, locked);
}

/*
 * The inventory rows of n skus (in sku order, each once), locked FOR NO KEY
 * UPDATE in that order (lock_rows), or read as the statement's snapshot sees
 * them (a late reservation locks them last).  NO KEY keeps the foreign-key
 * checks of checkout.reservations from blocking.
 */
void
store_ledger_rows(char *const *skus, int n, bool lock_rows, LedgerRow *rows)
{
	static Statement read[2] = {
		{.sql = "SELECT on_hand, reserved, unit_price FROM checkout.inventory WHERE sku = $1",
			.nargs = 1, .argtypes = {TEXTOID}, .generic = true,
		.columns = {"on_hand", "reserved", "unit_price"}},
		{.sql = "SELECT on_hand, reserved, unit_price FROM checkout.inventory WHERE sku = $1 "
			"FOR NO KEY UPDATE",
			.nargs = 1, .argtypes = {TEXTOID}, .generic = true,
		.columns = {"on_hand", "reserved", "unit_price"}},
	};
	KeyScan		ks;
	int			i;

	if (key_open(&ks, DT_INVENTORY, lock_rows ? ACL_SELECT | ACL_UPDATE : ACL_SELECT, true))
	{
		for (i = 0; i < n; i++)
		{
			bool		isnull;

			CHECK_FOR_INTERRUPTS();
			rows[i].found = false;
			rows[i].version = NULL;
			if (!key_find(&ks, CStringGetTextDatum(skus[i])))
				continue;
			if (!lock_rows)
			{
				ledger_row_from_slot(&ks, ks.found, &rows[i], false);
				continue;
			}
			/* the version locked may be newer than the one found: still this sku? */
			if (key_lock(&ks, LockTupleNoKeyExclusive) &&
				strcmp(TextDatumGetCString(slot_column(&ks, ks.locked, INV_SKU, &isnull)),
					   skus[i]) == 0)
				ledger_row_from_slot(&ks, ks.locked, &rows[i], true);
		}
		key_close(&ks);
		return;
	}
	for (i = 0; i < n; i++)
	{
		Statement  *st = &read[lock_rows];
		Datum		values[1] = {CStringGetTextDatum(skus[i])};

		CHECK_FOR_INTERRUPTS();
		rows[i].version = NULL;
		rows[i].found = stmt_exec(st, values, NULL, false) > 0;
		if (!rows[i].found)
			continue;
		rows[i].on_hand = stmt_int8(st, SPI_tuptable, 0, 0);
		rows[i].reserved = stmt_int8(st, SPI_tuptable, 0, 1);
		rows[i].unit_price = stmt_int8(st, SPI_tuptable, 0, 2);
	}
}

/*
 * A ledger update reached no row: the row this transaction locked is not
 * where it was.  That cannot happen while the row lock holds; should it,
 * the transaction must not commit a reservation without its ledger change.
 */
static void
ledger_row_moved(const char *sku)
{
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("checkout: the inventory row of sku %s moved under its row lock",
					quote_user_text(sku))));
}

/* Whether every ledger row was locked by the direct path (its version is known). */
static bool
ledger_locked_directly(LedgerRow *const *ledger, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		if (ledger[i]->version == NULL || !ledger[i]->version->locked)
			return false;
	return true;
}

/*
 * Row writes of reservations and the ledger, begun together; false, with
 * neither begun, when the direct path may not serve both.
 */
static bool
stock_writes_begin(RowWrite *held, AclMode held_need, RowWrite *ledger)
{
	if (!row_write_begin(held, DT_RESERVATIONS, held_need))
		return false;
	if (!row_write_begin(ledger, DT_INVENTORY, ACL_UPDATE))
	{
		row_write_end(held);
		return false;
	}
	return true;
}

static void
stock_writes_end(RowWrite *held, RowWrite *ledger)
{
	row_write_end(ledger);
	row_write_end(held);
}

/*
 * The reservation of quantities[i] of skus[i] (sku order), whose ledger rows
 * the caller holds locked: the reservations' rows inserted and each ledger
 * row's `reserved` raised.
 */
void
store_reservation_insert(int64 lock_id, char *const *skus, const int64 *quantities,
						 LedgerRow *const *ledger, int n)
{
	static Statement reserve = {
		.sql = "WITH held AS (INSERT INTO checkout.reservations (lock_id, sku, quantity) "
		"              VALUES ($1, $2, $3)) "
		"UPDATE checkout.inventory SET reserved = reserved + $3 WHERE sku = $2",
		.nargs = 3,
		.argtypes = {INT8OID, TEXTOID, INT8OID},
		.generic = true,
	};
	static const int held_columns[3] = {RS_LOCK_ID, RS_SKU, RS_QUANTITY};
	static const int reserved_column[1] = {INV_RESERVED};
	RowWrite	held;
	RowWrite	rows;
	int			i;

	if (ledger_locked_directly(ledger, n) && stock_writes_begin(&held, ACL_INSERT, &rows))
	{
		for (i = 0; i < n; i++)
		{
			Datum		values[3];
			bool		isnull[3] = {false, false, false};

			CHECK_FOR_INTERRUPTS();
			values[0] = Int64GetDatum(lock_id);
			values[1] = CStringGetTextDatum(skus[i]);
			values[2] = Int64GetDatum(quantities[i]);
			row_insert(&held, held_columns, values, isnull, 3);
			row_add(&rows, &ledger[i]->version->tid, reserved_column, &quantities[i], 1);
		}
		stock_writes_end(&held, &rows);
		return;
	}
	for (i = 0; i < n; i++)
	{
		Datum		values[3];

		CHECK_FOR_INTERRUPTS();
		values[0] = Int64GetDatum(lock_id);
		values[1] = CStringGetTextDatum(skus[i]);
		values[2] = Int64GetDatum(quantities[i]);
		if (stmt_exec(&reserve, values, NULL, false) != 1)
			ledger_row_moved(skus[i]);
		/* the version the caller held is no longer the row's latest */
		ledger[i]->version = NULL;
	}
}

static void
moved_alloc(MovedStock *m, int n)
{
	m->n = n;
	m->lock_ids = palloc(sizeof(int64) * Max(n, 1));
	m->skus = palloc(sizeof(char *) * Max(n, 1));
	m->quantities = palloc(sizeof(int64) * Max(n, 1));
}

/*
 * One lock's held stock moved by the direct path: its reservations read in
 * sku order (the primary key's), every ledger row locked in that order,
 * then each reservation deleted and its ledger row updated.  False, with
 * nothing done, when the direct path may not serve.  The reservations are
 * read under the lock's row lock, which every writer of them holds.
 */
static bool
move_one_lock(int64 lock_id, bool sell, MovedStock *moved)
{
	static const int ledger_columns[2] = {INV_RESERVED, INV_ON_HAND};
	KeyScan		ks;
	RowWrite	held;
	RowWrite	rows;
	ItemPointerData *held_tids;
	LedgerRow  *ledger;
	int			cap = 4;
	int			n = 0;
	int			i;

	if (!key_open(&ks, DT_RESERVATIONS, ACL_SELECT, true))
		return false;
	moved_alloc(moved, cap);
	held_tids = palloc(sizeof(ItemPointerData) * cap);
	key_scan(&ks, Int64GetDatum(lock_id));
	while (key_next(&ks))
	{
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		if (n == cap)
		{
			cap *= 2;
			moved->lock_ids = repalloc(moved->lock_ids, sizeof(int64) * cap);
			moved->skus = repalloc(moved->skus, sizeof(char *) * cap);
			moved->quantities = repalloc(moved->quantities, sizeof(int64) * cap);
			held_tids = repalloc(held_tids, sizeof(ItemPointerData) * cap);
		}
		held_tids[n] = *slot_tid(ks.found);
		moved->lock_ids[n] = lock_id;
		moved->skus[n] = TextDatumGetCString(slot_column(&ks, ks.found, RS_SKU, &isnull));
		moved->quantities[n] = DatumGetInt64(slot_column(&ks, ks.found, RS_QUANTITY, &isnull));
		n++;
	}
	key_close(&ks);
	moved->n = n;

	ledger = palloc(sizeof(LedgerRow) * Max(n, 1));
	store_ledger_rows(moved->skus, n, true, ledger);
	for (i = 0; i < n; i++)
		/* a reservation's sku is in the inventory (foreign key) */
		if (!ledger[i].found)
			ledger_row_moved(moved->skus[i]);
	for (i = 0; i < n; i++)
		if (ledger[i].version == NULL)
			return false;		/* locked by a statement: move by statements too */

	if (!stock_writes_begin(&held, ACL_DELETE, &rows))
		return false;
	for (i = 0; i < n; i++)
	{
		int64		deltas[2] = {-moved->quantities[i], -moved->quantities[i]};

		CHECK_FOR_INTERRUPTS();
		row_delete(&held, &held_tids[i]);
		row_add(&rows, &ledger[i].version->tid, ledger_columns, deltas, sell ? 2 : 1);
	}
	stock_writes_end(&held, &rows);
	return true;
}

/* Locks, in sku order, the ledger rows of everything the locks hold. */
static Statement lock_set = {
	.sql = "SELECT i.sku FROM checkout.inventory i "
	"WHERE i.sku IN (SELECT r.sku FROM checkout.reservations r WHERE r.lock_id = ANY ($1)) "
	"ORDER BY i.sku FOR NO KEY UPDATE",
	.nargs = 1, .argtypes = {INT8ARRAYOID},
};

void
store_held_stock_lock(const int64 *lock_ids, int n)
{
	Datum		values[1] = {int8_array(lock_ids, n)};

	stmt_exec(&lock_set, values, NULL, false);
}

/*
 * Releases (sell = false) or sells (sell = true) everything the locks hold,
 * taking the ledger rows in sku order first, so that a set of locks and a
 * checkout sharing skus never deadlock.  One ledger update per sku: a sweep
 * of thousands of locks on a hot sku touches its row once.  moved gets what
 * moved, ordered by lock_id and sku.
 */
void
store_held_stock_move(const int64 *lock_ids, int n, bool sell, MovedStock *moved)
{
#define MOVE_SET_SQL(set_clause) \
	"WITH gone AS (DELETE FROM checkout.reservations r WHERE r.lock_id = ANY ($1) " \
	"              RETURNING r.lock_id, r.sku, r.quantity), " \
	"per_sku AS (SELECT sku, pg_catalog.sum(quantity)::bigint AS q FROM gone GROUP BY sku), " \
	"moved AS (UPDATE checkout.inventory i SET " set_clause " FROM per_sku p WHERE i.sku = p.sku) " \
	"SELECT lock_id, sku, quantity FROM gone ORDER BY lock_id, sku"
	static Statement release = {
		.sql = MOVE_SET_SQL("reserved = i.reserved - p.q"),
		.nargs = 1, .argtypes = {INT8ARRAYOID}, .columns = {"lock_id", "sku", "quantity"},
	};
	static Statement sale = {
		.sql = MOVE_SET_SQL("on_hand = i.on_hand - p.q, reserved = i.reserved - p.q"),
		.nargs = 1, .argtypes = {INT8ARRAYOID}, .columns = {"lock_id", "sku", "quantity"},
	};
#undef MOVE_SET_SQL
	Statement  *st = sell ? &sale : &release;
	Datum		values[1];
	SPITupleTable *tt;
	int			i;

	if (n == 1 && move_one_lock(lock_ids[0], sell, moved))
		return;
	values[0] = int8_array(lock_ids, n);
	stmt_exec(&lock_set, values, NULL, false);
	moved_alloc(moved, stmt_exec(st, values, NULL, false));
	tt = SPI_tuptable;
	for (i = 0; i < moved->n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		moved->lock_ids[i] = stmt_int8(st, tt, i, 0);
		moved->skus[i] = stmt_text(st, tt, i, 1);
		moved->quantities[i] = stmt_int8(st, tt, i, 2);
	}
}

/* ---- price snapshots ---- */

void
store_snapshots_insert(int64 lock_id, int n, char *const *line_ids, char *const *skus,
					   const int64 *quantities, const int64 *cart_prices,
					   const int64 *locked_prices, const Datum *drift_percents,
					   const bool *unbounded)
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
	static const int columns[7] = {PS_LOCK_ID, PS_LINE_ID, PS_SKU, PS_QUANTITY, PS_CART_PRICE,
	PS_LOCKED_PRICE, PS_DRIFT_PERCENT};
	RowWrite	w;
	Datum		values[7];
	int			i;

	if (row_write_begin(&w, DT_PRICE_SNAPSHOTS, ACL_INSERT))
	{
		for (i = 0; i < n; i++)
		{
			bool		isnull[7] = {false, false, false, false, false, false, false};

			CHECK_FOR_INTERRUPTS();
			values[0] = Int64GetDatum(lock_id);
			values[1] = CStringGetTextDatum(line_ids[i]);
			values[2] = CStringGetTextDatum(skus[i]);
			values[3] = Int64GetDatum(quantities[i]);
			values[4] = Int64GetDatum(cart_prices[i]);
			values[5] = Int64GetDatum(locked_prices[i]);
			values[6] = drift_percents[i];
			isnull[6] = unbounded[i];
			row_insert(&w, columns, values, isnull, 7);
		}
		row_write_end(&w);
		return;
	}
	{
		int			dims[1] = {n};
		int			lbs[1] = {1};

		values[0] = Int64GetDatum(lock_id);
		values[1] = text_array(line_ids, n);
		values[2] = text_array(skus, n);
		values[3] = int8_array(quantities, n);
		values[4] = int8_array(cart_prices, n);
		values[5] = int8_array(locked_prices, n);
		values[6] = PointerGetDatum(construct_md_array((Datum *) drift_percents, (bool *) unbounded,
													   1, dims, lbs, NUMERICOID, -1, false,
													   TYPALIGN_INT));
		stmt_exec(&snapshot, values, NULL, false);
	}
}

/* Takes back the lock's price snapshots (a late reservation that decides again). */
void
store_snapshots_delete(int64 lock_id)
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

/* ---- orders ---- */

/*
 * The order: false, with nothing written, when order_ref is already taken.
 * An application's own order_ref (own) always goes by the statement, whose
 * ON CONFLICT answers also a concurrent insert of the same text.  The
 * generated one may go directly, after a read that answers a taken text as
 * ON CONFLICT would; only the same text inserted by a concurrent
 * transaction at that instant would be 23505 rather than false.
 */
bool
store_order_insert(int64 lock_id, const char *cart_id, int64 total, const char *order_ref,
				   bool own)
{
	static Statement insert = {
		.sql = "INSERT INTO checkout.orders (order_ref, lock_id, cart_id, total, source) "
		"VALUES ($2, $1, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING order_ref",
		.nargs = 5,
		.argtypes = {INT8OID, TEXTOID, TEXTOID, INT8OID, TEXTOID},
		.generic = true,
	};
	static const int columns[5] = {OR_ORDER_REF, OR_LOCK_ID, OR_CART_ID, OR_TOTAL, OR_SOURCE};
	const char *source = own ? "application" : "checkout";
	Datum		values[5];
	bool		isnull[5] = {false, false, false, false, false};
	KeyScan		ks;
	RowWrite	w;

	if (!own && key_open(&ks, DT_ORDERS, ACL_SELECT, true))
	{
		bool		taken = key_find(&ks, CStringGetTextDatum(order_ref));

		key_close(&ks);
		if (taken)
			return false;
		if (row_write_begin(&w, DT_ORDERS, ACL_INSERT))
		{
			values[0] = CStringGetTextDatum(order_ref);
			values[1] = Int64GetDatum(lock_id);
			values[2] = CStringGetTextDatum(cart_id);
			values[3] = Int64GetDatum(total);
			values[4] = CStringGetTextDatum(source);
			row_insert(&w, columns, values, isnull, 5);
			row_write_end(&w);
			return true;
		}
	}
	values[0] = Int64GetDatum(lock_id);
	values[1] = CStringGetTextDatum(order_ref);
	values[2] = CStringGetTextDatum(cart_id);
	values[3] = Int64GetDatum(total);
	values[4] = CStringGetTextDatum(source);
	return stmt_exec(&insert, values, NULL, false) > 0;
}

/* Cancels the locks' live orders; returns how many, with their lock ids and refs. */
int
store_orders_cancel(const int64 *lock_ids, int n, int64 **cancelled_lock_ids, char ***order_refs)
{
	static Statement cancel = {
		.sql = "UPDATE checkout.orders o SET status = 'cancelled', cancelled_at = pg_catalog.now() "
		"WHERE o.lock_id = ANY ($1) AND o.status = 'created' "
		"RETURNING o.lock_id, o.order_ref",
		.nargs = 1,
		.argtypes = {INT8ARRAYOID},
		.columns = {"lock_id", "order_ref"},
	};
	Datum		values[1] = {int8_array(lock_ids, n)};
	SPITupleTable *tt;
	int			rows = stmt_exec(&cancel, values, NULL, false);
	int			i;

	tt = SPI_tuptable;
	*cancelled_lock_ids = palloc(sizeof(int64) * Max(rows, 1));
	*order_refs = palloc(sizeof(char *) * Max(rows, 1));
	for (i = 0; i < rows; i++)
	{
		(*cancelled_lock_ids)[i] = stmt_int8(&cancel, tt, i, 0);
		(*order_refs)[i] = stmt_text(&cancel, tt, i, 1);
	}
	return rows;
}

/* ---- payments ---- */

/*
 * Records voids or refunds the application must make at its gateway, one per
 * lock; returns how many rows, with their ids and locks.
 */
int
store_compensations_insert(const int64 *lock_ids, const char *kind, char *const *references,
						   const int64 *amounts, int n, int64 **compensation_ids,
						   int64 **for_lock_ids)
{
	static Statement insert = {
		.sql = "INSERT INTO checkout.compensations (lock_id, kind, reference, amount) "
		"SELECT t.lock_id, $2, t.reference, t.amount "
		"FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($3::text[]), "
		"                pg_catalog.unnest($4::int8[])) AS t(lock_id, reference, amount) "
		"RETURNING compensation_id, lock_id",
		.nargs = 4,
		.argtypes = {INT8ARRAYOID, TEXTOID, TEXTARRAYOID, INT8ARRAYOID},
		.generic = true,
		.columns = {"compensation_id", "lock_id"},
	};
	Datum		values[4];
	SPITupleTable *tt;
	int			rows;
	int			i;

	values[0] = int8_array(lock_ids, n);
	values[1] = CStringGetTextDatum(kind);
	values[2] = text_array(references, n);
	values[3] = int8_array(amounts, n);
	rows = stmt_exec(&insert, values, NULL, false);
	tt = SPI_tuptable;
	*compensation_ids = palloc(sizeof(int64) * Max(rows, 1));
	*for_lock_ids = palloc(sizeof(int64) * Max(rows, 1));
	for (i = 0; i < rows; i++)
	{
		(*compensation_ids)[i] = stmt_int8(&insert, tt, i, 0);
		(*for_lock_ids)[i] = stmt_int8(&insert, tt, i, 1);
	}
	return rows;
}

/* The application's gateway data for a payment, kept beside the lock. */
void
store_payment_metadata_insert(int64 lock_id, CheckoutPhase phase, const char *metadata)
{
	static Statement insert = {
		.sql = "INSERT INTO checkout.payment_metadata (lock_id, phase, metadata) "
		"VALUES ($1, $2::checkout.phase, $3::pg_catalog.jsonb)",
		.nargs = 3,
		.argtypes = {INT8OID, TEXTOID, TEXTOID},
		.generic = true,
	};
	Datum		values[3];

	values[0] = Int64GetDatum(lock_id);
	values[1] = CStringGetTextDatum(phase_name(phase));
	values[2] = CStringGetTextDatum(metadata);
	stmt_exec(&insert, values, NULL, false);
}

/* ---- checkout.table_access() ---- */

/* For each table the direct path serves: whether it serves it now, and why not. */
Datum
checkout_table_access(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			t;

	InitMaterializedSRF(fcinfo, 0);
	for (t = 0; t < DT_COUNT; t++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		char	   *why_not;

		values[0] = CStringGetTextDatum(direct_table_name((DirectTable) t));
		values[1] = BoolGetDatum(direct_usable((DirectTable) t, 0, &why_not));
		if (why_not)
			values[2] = CStringGetTextDatum(why_not);
		else
			nulls[2] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
