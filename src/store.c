/*
 * store.c — the one owner of the extension's tables: every key read, row
 * lock, table lock and row write of checkout.locks, lock_lines, inventory,
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
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "direct.h"
#include "store.h"
#include "util.h"

PG_FUNCTION_INFO_V1(checkout_table_access);

/*
 * A row version this transaction holds row-locked (so the row's latest), to
 * write over later.  A row only read has none: nothing writes over it.
 */
typedef struct RowVersion
{
	ItemPointerData tid;
} RowVersion;

static RowVersion *
rowlocked_version(TupleTableSlot *slot)
{
	RowVersion *v = palloc(sizeof(RowVersion));

	v->tid = *slot_tid(slot);
	return v;
}

/* ---- locks ---- */

#define LOCK_COLUMN_LIST                                                 \
	"lock_id, cart_id, session_id, state, phase, exclusive, "            \
	"idempotency_key, gateway, created_at, expires_at, finished_at, "    \
	"total, order_ref, auth_reference, auth_amount, capture_reference, " \
	"capture_amount, failed_phase, error_code, error_message "
#define LOCK_COLUMNS "SELECT " LOCK_COLUMN_LIST "FROM checkout.locks "
/* in the order of the LK_ columns */
#define LOCK_COLUMN_NAMES                                                  \
	{                                                                      \
		"lock_id", "cart_id", "session_id", "state", "phase", "exclusive", \
			"idempotency_key", "gateway", "created_at", "expires_at",      \
			"finished_at", "total", "order_ref", "auth_reference",         \
			"auth_amount", "capture_reference", "capture_amount",          \
			"failed_phase", "error_code", "error_message"                  \
	}

/*
 * A LockRow from the lock columns' values, in LK_ order, as stored (enums
 * as enums): the one mapping of the table's columns to a LockRow, whether
 * they come from a statement or straight from the heap.
 */
static void
lock_row_from_values(const Datum *v, const bool *isnull, LockRow *row)
{
#define TEXT_AT(c)	(isnull[c] ? NULL : TextDatumGetCString(v[c]))
#define INT8_AT(c)	(isnull[c] ? 0 : DatumGetInt64(v[c]))
#define TIME_AT(c)	(isnull[c] ? 0 : DatumGetTimestampTz(v[c]))
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
	Datum values[LK_NCOLUMNS];
	bool  isnull[LK_NCOLUMNS];
	int	  c;

	for (c = 0; c < LK_NCOLUMNS; c++)
		values[c] = slot_column(ks, slot, c, &isnull[c]);
	lock_row_from_values(values, isnull, row);
}

/* Row `i` of the statement's result. */
static void
lock_row_from_result(Statement *st, SPITupleTable *tt, int i, LockRow *row)
{
	Datum v[LK_NCOLUMNS];
	bool  isnull[LK_NCOLUMNS];
	int	  c;

	for (c = 0; c < LK_NCOLUMNS; c++)
		v[c] = stmt_datum(st, tt, i, c, &isnull[c]);
	lock_row_from_values(v, isnull, row);
}

static int
fetch_rows(Statement *st, Datum *values, const char *nulls, bool read_only,
		   LockRow **rows)
{
	int			   n = stmt_exec(st, values, nulls, read_only);
	SPITupleTable *tt = SPI_tuptable;
	int			   i;

	*rows = palloc(sizeof(LockRow) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		lock_row_from_result(st, tt, i, &(*rows)[i]);
	}
	return n;
}

static bool
fetch_one(Statement *st, Datum *values, const char *nulls, bool read_only,
		  LockRow *row)
{
	LockRow *rows;

	if (fetch_rows(st, values, nulls, read_only, &rows) == 0)
		return false;
	*row = rows[0];
	return true;
}

/* Whether a version of a lock's row is session_id's (NULL: anyone's). */
static bool
lock_of_session(KeyScan *ks, TupleTableSlot *slot, const char *session_id)
{
	bool isnull;

	return session_id == NULL ||
		   strcmp(TextDatumGetCString(
					  slot_column(ks, slot, LK_SESSION_ID, &isnull)),
				  session_id) == 0;
}

/*
 * The lock, row-locked (FOR NO KEY UPDATE: the call changes no key of it, and
 * a foreign key's check of it, FOR KEY SHARE, must not wait) for the rest of
 * the transaction, if it exists and (session_id not NULL) belongs to that
 * session: another session's lock is not row-locked, and so never waited on.
 */
bool
store_lock_fetch(int64 lock_id, const char *session_id, LockRow *row)
{
	static Statement fetch = {
		.sql = LOCK_COLUMNS
		"WHERE lock_id = $1 AND ($2::text IS NULL OR session_id = $2) "
		"FOR NO KEY UPDATE",
		.nargs = 2,
		.argtypes = {INT8OID, TEXTOID},
		.generic = true,
		.columns = LOCK_COLUMN_NAMES,
	};
	KeyScan ks;
	bool	found = false;

	if (key_open(&ks, DT_LOCKS, ACL_SELECT | ACL_UPDATE, true))
	{
		/*
		 * whose lock it is, asked of the version found (another session's
		 * row is not row-locked) and again of the version row-locked, which
		 * a concurrent update may have made newer, as SQL's recheck would
		 */
		if (key_find(&ks, Int64GetDatum(lock_id)) &&
			lock_of_session(&ks, ks.found, session_id) &&
			key_rowlock(&ks, LockTupleNoKeyExclusive) &&
			lock_of_session(&ks, ks.rowlocked, session_id))
		{
			lock_row_from_slot(&ks, ks.rowlocked, row);
			row->version = rowlocked_version(ks.rowlocked);
			found = true;
		}
		key_close(&ks);
	}
	else
	{
		Datum values[2] = {Int64GetDatum(lock_id), (Datum) 0};
		char  nulls[2] = {' ', session_id ? ' ' : 'n'};

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
		.nargs = 1,
		.argtypes = {INT8OID},
		.generic = true,
		.columns = LOCK_COLUMN_NAMES,
	};
	KeyScan ks;
	bool	found = false;

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
		Datum		  values[1] = {Int64GetDatum(lock_id)};
		int			  spi_state = checkout_spi_connect();

		if (stmt_exec(&read, values, NULL, true) > 0)
		{
			/* the row outlives SPI: build it in the caller's memory */
			MemoryContext spi = MemoryContextSwitchTo(caller);

			lock_row_from_result(&read, SPI_tuptable, 0, row);
			MemoryContextSwitchTo(spi);
			found = true;
		}
		checkout_spi_finish(spi_state);
	}
	return found &&
		   (session_id == NULL || strcmp(row->session_id, session_id) == 0);
}

/* The lock this session made with this idempotency key, row-locked. */
bool
store_lock_fetch_by_key(const char *session_id, const char *idempotency_key,
						LockRow *row)
{
	static Statement by_key = {
		.sql = LOCK_COLUMNS
		"WHERE session_id = $1 AND idempotency_key = $2 FOR NO KEY UPDATE",
		.nargs = 2,
		.argtypes = {TEXTOID, TEXTOID},
		.generic = true,
		.columns = LOCK_COLUMN_NAMES,
	};
	Datum values[2] = {CStringGetTextDatum(session_id),
					   CStringGetTextDatum(idempotency_key)};

	return fetch_one(&by_key, values, NULL, false, row);
}

/* The cart's active locks, row-locked in lock_id order. */
int
store_locks_of_cart(const char *cart_id, LockRow **rows)
{
	static Statement by_cart = {
		.sql = LOCK_COLUMNS
		"WHERE cart_id = $1 AND state = 'active' ORDER BY lock_id FOR NO KEY UPDATE",
		.nargs = 1,
		.argtypes = {TEXTOID},
		.generic = true,
		.columns = LOCK_COLUMN_NAMES,
	};
	Datum values[1] = {CStringGetTextDatum(cart_id)};

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
		.sql = LOCK_COLUMNS
		"WHERE state = 'active' AND expires_at <= pg_catalog.now() "
		"ORDER BY expires_at LIMIT $1 FOR NO KEY UPDATE SKIP LOCKED",
		.nargs = 1,
		.argtypes = {INT4OID},
		.columns = LOCK_COLUMN_NAMES,
	};
	Datum values[1] = {Int32GetDatum(batch)};

	return fetch_rows(&due, values, NULL, false, rows);
}

/* The earliest deadline of an active lock; false when none is active. */
bool
store_next_due(TimestampTz *next_due)
{
	static Statement next = {
		.sql = "SELECT pg_catalog.min(expires_at) AS next_due "
			   "FROM checkout.locks "
			   "WHERE state = 'active'",
		.columns = {"next_due"},
	};

	stmt_exec(&next, NULL, NULL, true);
	if (stmt_isnull(&next, SPI_tuptable, 0, 0))
		return false;
	*next_due = stmt_timestamptz(&next, SPI_tuptable, 0, 0);
	return true;
}

/*
 * Whether the cart has an active lock before its deadline
 * (checkout.protect_cart).
 */
bool
store_cart_has_live_lock(const char *cart_id)
{
	static Statement live_lock = {
		.sql = "SELECT 1 "
			   "FROM checkout.locks "
			   "WHERE cart_id = $1 AND state = 'active' AND expires_at > "
			   "  pg_catalog.now() "
			   "LIMIT 1",
		.nargs = 1,
		.argtypes = {TEXTOID},
		.generic = true,
	};
	Datum values[1] = {CStringGetTextDatum(cart_id)};

	return stmt_exec(&live_lock, values, NULL, true) > 0;
}

static Datum
interval_from_seconds(double secs)
{
	Interval *iv = palloc0(sizeof(Interval));

	iv->time = (TimeOffset) (secs * USECS_PER_SEC);
	return IntervalPGetDatum(iv);
}

/*
 * Takes a start's claims, before it looks at the cart or the idempotency
 * key: one on the cart (when cart_id is given, i.e. the lock will be
 * exclusive) and one on the session's key, in that order, each a
 * transaction-level advisory lock held until commit.  Two starts of one
 * cart, or with one key, so come one after the other: the second sees the
 * first's lock once it commits, as ON CONFLICT would have shown it, and no
 * insert of either can meet the other's in a unique index.  (Field 4 of
 * the advisory tags, 3 and 4, keeps the claims apart from the tags of
 * pg_advisory_lock.)  Under REPEATABLE READ or SERIALIZABLE the second
 * cannot see the first's lock: having waited for the claim, it fails as a
 * serialization failure, to be retried.
 */
void
store_claim_start(const char *cart_id, const char *session_id,
				  const char *idempotency_key)
{
	bool waited = false;
	int	 i;

	for (i = 0; i < 2; i++)
	{
		LOCKTAG tag;
		uint64	h;

		if (i == 0 && cart_id == NULL)
			continue;
		if (i == 1 && idempotency_key == NULL)
			continue;
		if (i == 0)
			h = hash_bytes_extended((const unsigned char *) cart_id,
									strlen(cart_id), 0);
		else
			h = hash_bytes_extended((const unsigned char *) idempotency_key,
									strlen(idempotency_key),
									hash_bytes_extended((const unsigned char *)
															session_id,
														strlen(session_id),
														0));
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (h >> 32), (uint32) h,
							 3 + i);
		if (LockAcquire(&tag, ExclusiveLock, false, true) ==
			LOCKACQUIRE_NOT_AVAIL)
		{
			waited = true;
			(void) LockAcquire(&tag, ExclusiveLock, false, false);
		}
	}
	if (waited && IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to a concurrent checkout_start of cart %s",
						quote_user_text(cart_id ? cart_id : ""))));
}

/*
 * Whether the cart has an active lock (its claim held: none can appear
 * meanwhile).
 */
bool
store_cart_has_active_lock(const char *cart_id)
{
	static Statement active = {
		.sql = "SELECT 1 "
			   "FROM checkout.locks "
			   "WHERE cart_id = $1 AND state = 'active' "
			   "LIMIT 1",
		.nargs = 1,
		.argtypes = {TEXTOID},
		.generic = true,
	};
	KeyScan ks;
	bool	found = false;

	if (key_open_by(&ks, DT_LOCKS, ACL_SELECT, true))
	{
		key_scan(&ks, CStringGetTextDatum(cart_id));
		/*
		 * the index's rows were active when indexed: the version seen may not
		 * be
		 */
		while (!found && key_next(&ks))
		{
			bool  isnull;
			Datum state = slot_column(&ks, ks.found, LK_STATE, &isnull);

			found = strcmp(DatumGetCString(
							   DirectFunctionCall1(enum_out, state)),
						   lock_state_name(LOCK_ACTIVE)) == 0;
		}
		key_close(&ks);
		return found;
	}
	else
	{
		Datum values[1] = {CStringGetTextDatum(cart_id)};

		return stmt_exec(&active, values, NULL, false) > 0;
	}
}

/*
 * Inserts a new lock's row (the caller holds the start's claim and has
 * found the cart free); its id, created_at and expires_at go into row.
 */
void
store_lock_insert(const char *cart_id, const char *session_id,
				  const char *idempotency_key, bool exclusive,
				  const char *gateway, double ttl_secs, LockRow *row)
{
	static Statement create = {
		.sql = "INSERT INTO checkout.locks (cart_id, session_id, exclusive, "
			   "  idempotency_key, gateway, expires_at) "
			   "VALUES ($1, $2, $3, $4, $5, $6) "
			   "RETURNING lock_id, created_at",
		.nargs = 6,
		.argtypes = {TEXTOID, TEXTOID, BOOLOID, TEXTOID, TEXTOID,
					 TIMESTAMPTZOID},
		.generic = true,
		.qualified = true,
		.columns = {"lock_id", "created_at"},
	};
	static const int columns[6] = {LK_CART_ID,	 LK_SESSION_ID,
								   LK_EXCLUSIVE, LK_IDEMPOTENCY_KEY,
								   LK_GATEWAY,	 LK_EXPIRES_AT};
	/* now() + ttl, as the statement would compute it */
	TimestampTz		 expires_at = DatumGetTimestampTz(
			 DirectFunctionCall2(timestamptz_pl_interval,
								 TimestampTzGetDatum(
									 GetCurrentTransactionStartTimestamp()),
								 interval_from_seconds(ttl_secs)));
	Datum	 values[6];
	bool	 isnull[6] = {false, false, false, idempotency_key == NULL,
						  false, false};
	RowWrite w;

	values[0] = CStringGetTextDatum(cart_id);
	values[1] = CStringGetTextDatum(session_id);
	values[2] = BoolGetDatum(exclusive);
	values[3] = idempotency_key ? CStringGetTextDatum(idempotency_key)
								: (Datum) 0;
	values[4] = CStringGetTextDatum(gateway);
	values[5] = TimestampTzGetDatum(expires_at);

	memset(row, 0, sizeof(*row));
	if (row_write_begin(&w, DT_LOCKS, ACL_INSERT))
	{
		bool null;

		row_insert(&w, columns, values, isnull, 6);
		row->lock_id = DatumGetInt64(row_inserted(&w, LK_LOCK_ID, &null));
		row->created_at = DatumGetTimestampTz(
			row_inserted(&w, LK_CREATED_AT, &null));
		row_write_end(&w);
	}
	else
	{
		char nulls[6] = {' ', ' ', ' ', idempotency_key ? ' ' : 'n', ' ', ' '};

		if (stmt_exec(&create, values, nulls, false) != 1)
			elog(ERROR, "checkout: the lock's INSERT inserted no row");
		row->lock_id = stmt_int8(&create, SPI_tuptable, 0, 0);
		row->created_at = stmt_timestamptz(&create, SPI_tuptable, 0, 1);
	}
	row->expires_at = expires_at;
	row->cart_id = pstrdup(cart_id);
	row->session_id = pstrdup(session_id);
	row->state = LOCK_ACTIVE;
	row->phase = PHASE_NONE;
}

/* The lock's lines, in cart order (line_no from 1). */
void
store_lines_insert(int64 lock_id, const CartLines *cart)
{
	static Statement lines = {
		.sql =
			"INSERT INTO checkout.lock_lines (lock_id, line_no, line_id, "
			"  sku, quantity, cart_price) "
			"SELECT $1, t.line_no, t.line_id, t.sku, t.quantity, t.price "
			"FROM ROWS FROM (pg_catalog.unnest($2::text[]), "
			"  pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::int8[]), "
			"  pg_catalog.unnest($5::int8[])) "
			"WITH ORDINALITY AS t(line_id, sku, quantity, price, line_no)",
		.nargs = 5,
		.argtypes = {INT8OID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID,
					 INT8ARRAYOID},
		.generic = true,
	};
	static const int columns[6] = {LL_LOCK_ID, LL_LINE_NO,	LL_LINE_ID,
								   LL_SKU,	   LL_QUANTITY, LL_CART_PRICE};
	RowWrite		 w;
	Datum			 values[6];
	bool			 isnull[6] = {false, false, false, false, false, false};
	int				 i;

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
 * row-locked when it has one, else one UPDATE; either way the row's latest
 * version is what the call holds afterwards (or none, after a statement).
 */
void
store_lock_save(LockRow *row)
{
	static Statement save = {
		.sql = "UPDATE checkout.locks "
			   "SET state = $2::checkout.lock_state, "
			   "  phase = $3::checkout.phase, expires_at = $4, "
			   "  finished_at = $5, total = $6, order_ref = $7, "
			   "  auth_reference = $8, auth_amount = $9, "
			   "  capture_reference = $10, capture_amount = $11, "
			   "  failed_phase = $12::checkout.phase, error_code = $13, "
			   "  error_message = $14 "
			   "WHERE lock_id = $1",
		.nargs = 14,
		.argtypes = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
					 INT8OID, TEXTOID, TEXTOID, INT8OID, TEXTOID, INT8OID,
					 TEXTOID, TEXTOID, TEXTOID},
		.generic = true,
	};
	/* the columns a call changes, in the statement's order ($2 ...) */
	static const int columns[13] =
		{LK_STATE,			LK_PHASE,		 LK_EXPIRES_AT,
		 LK_FINISHED_AT,	LK_TOTAL,		 LK_ORDER_REF,
		 LK_AUTH_REFERENCE, LK_AUTH_AMOUNT,	 LK_CAPTURE_REFERENCE,
		 LK_CAPTURE_AMOUNT, LK_FAILED_PHASE, LK_ERROR_CODE,
		 LK_ERROR_MESSAGE};
	const char *phase = row->phase > PHASE_NONE ? phase_name(row->phase)
												: NULL;
	const char *failed = row->failed_phase > PHASE_NONE
							 ? phase_name(row->failed_phase)
							 : NULL;
	Datum		values[14];
	bool		isnull[14];
	RowWrite	w;
	int			i;

	memset(isnull, 0, sizeof(isnull));
#define SET_TEXT(i, v)                          \
	do                                          \
	{                                           \
		if (v)                                  \
			values[i] = CStringGetTextDatum(v); \
		else                                    \
			isnull[i] = true;                   \
	} while (0)
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

	if (row->version != NULL && row_write_begin(&w, DT_LOCKS, ACL_UPDATE))
	{
		values[1] = enum_value(&w, LK_STATE, lock_state_name(row->state));
		isnull[2] = phase == NULL;
		if (phase)
			values[2] = enum_value(&w, LK_PHASE, phase);
		isnull[11] = failed == NULL;
		if (failed)
			values[11] = enum_value(&w, LK_FAILED_PHASE, failed);
		row_update(&w, &row->version->tid, columns, values + 1, isnull + 1,
				   13);
		row_write_end(&w);
		return;
	}

	/* the statement's enum parameters are text, cast in the statement */
	values[1] = CStringGetTextDatum(lock_state_name(row->state));
	SET_TEXT(2, phase);
	SET_TEXT(11, failed);
#undef SET_TEXT
	{
		char nulls[14];

		for (i = 0; i < 14; i++)
			nulls[i] = isnull[i] ? 'n' : ' ';
		if (stmt_exec(&save, values, nulls, false) != 1)
			elog(ERROR, "checkout lock " INT64_FORMAT " vanished",
				 row->lock_id);
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
	return direct_runs_user_code(DT_PRICE_SNAPSHOTS) ||
		   direct_runs_user_code(DT_LOCKS);
}

/* ---- a lock's cart lines and the stock ledger ---- */

/* The lock's lines (in no particular order). */
int
store_cart_lines(int64 lock_id, CartLine **lines)
{
	static Statement read = {
		.sql = "SELECT line_no, line_id, sku, quantity, cart_price "
			   "FROM checkout.lock_lines "
			   "WHERE lock_id = $1",
		.nargs = 1,
		.argtypes = {INT8OID},
		.generic = true,
		.columns = {"line_no", "line_id", "sku", "quantity", "cart_price"},
	};
	KeyScan ks;
	int		cap = 8;
	int		n = 0;

	*lines = palloc(sizeof(CartLine) * cap);
	if (key_open(&ks, DT_LOCK_LINES, ACL_SELECT, true))
	{
		key_scan(&ks, Int64GetDatum(lock_id));
		while (key_next(&ks))
		{
			CartLine *line;
			bool	  isnull;

			CHECK_FOR_INTERRUPTS();
			if (n == cap)
			{
				cap *= 2;
				*lines = repalloc(*lines, sizeof(CartLine) * cap);
			}
			line = &(*lines)[n++];
			line->line_no = DatumGetInt32(
				slot_column(&ks, ks.found, LL_LINE_NO, &isnull));
			line->line_id = TextDatumGetCString(
				slot_column(&ks, ks.found, LL_LINE_ID, &isnull));
			line->sku = TextDatumGetCString(
				slot_column(&ks, ks.found, LL_SKU, &isnull));
			line->quantity = DatumGetInt64(
				slot_column(&ks, ks.found, LL_QUANTITY, &isnull));
			line->cart_price = DatumGetInt64(
				slot_column(&ks, ks.found, LL_CART_PRICE, &isnull));
		}
		key_close(&ks);
	}
	else
	{
		Datum		   values[1] = {Int64GetDatum(lock_id)};
		SPITupleTable *tt;
		int			   i;

		n = stmt_exec(&read, values, NULL, false);
		tt = SPI_tuptable;
		*lines = repalloc(*lines, sizeof(CartLine) * Max(n, 1));
		for (i = 0; i < n; i++)
		{
			CartLine *line = &(*lines)[i];

			CHECK_FOR_INTERRUPTS();
			line->line_no = stmt_int4(&read, tt, i, 0);
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
	Datum values[1] = {Int64GetDatum(lock_id)};

	if (stmt_exec(&unknown, values, NULL, false) == 0)
		return false;
	*line_id = stmt_text(&unknown, SPI_tuptable, 0, 0);
	*sku = stmt_text(&unknown, SPI_tuptable, 0, 1);
	return true;
}

/*
 * Takes the stock table lock, which every call that moves stock holds
 * before it takes its snapshot: ROW EXCLUSIVE on checkout.inventory_stripes.
 * Changing how a sku is striped (checkout_stripe) takes the striping table
 * lock, SHARE ROW EXCLUSIVE on the same table (store_striping_table_lock),
 * so the call sees a sku's striping as it is, and it cannot change under
 * the call.  Stock rows are then row-locked in one order everywhere: by
 * sku, and within a sku by stripe (its inventory row, where an unstriped
 * sku's units are, counts as stripe 0).  A schema not yet updated to 0.3.0
 * has no stripes, and nothing to take.
 */
void
store_stock_table_lock(void)
{
	if (direct_table_exists(DT_STRIPES))
		LockRelationOid(direct_table_known_relid(DT_STRIPES),
						RowExclusiveLock);
}

/*
 * Whether any sku is striped (a backend's answer, until checkout_stripe
 * changes a sku's striping: it invalidates checkout.inventory_stripes'
 * relcache entry).  Only under the stock table lock (store_stock_table_lock)
 * is the answer sure to hold until the transaction ends: store_ledger_rows
 * asks again under it, whatever a caller decided before.
 */
bool
store_striping_in_use(void)
{
	static Statement any = {
		.sql = "SELECT 1 FROM checkout.inventory_stripes LIMIT 1",
		.qualified = true,
	};

	if (!direct_table_exists(DT_STRIPES))
		return false;
	if (direct_stripes_in_use() < 0)
		direct_stripes_in_use_set(stmt_exec(&any, NULL, NULL, false) > 0);
	return direct_stripes_in_use() > 0;
}

static void
ledger_row_from_slot(KeyScan *ks, TupleTableSlot *slot, LedgerRow *row,
					 bool rowlocked)
{
	bool isnull;

	row->found = true;
	row->rowlocked = rowlocked;
	row->on_hand = DatumGetInt64(slot_column(ks, slot, INV_ON_HAND, &isnull));
	row->reserved = DatumGetInt64(
		slot_column(ks, slot, INV_RESERVED, &isnull));
	row->unit_price = DatumGetInt64(
		slot_column(ks, slot, INV_UNIT_PRICE, &isnull));
	row->version = rowlocked ? rowlocked_version(slot) : NULL;
}

static void
stripe_row_from_slot(KeyScan *ks, TupleTableSlot *slot, StripeRow *row,
					 bool rowlocked)
{
	bool isnull;

	row->stripe = DatumGetInt32(slot_column(ks, slot, ST_STRIPE, &isnull));
	row->on_hand = DatumGetInt64(slot_column(ks, slot, ST_ON_HAND, &isnull));
	row->reserved = DatumGetInt64(slot_column(ks, slot, ST_RESERVED, &isnull));
	row->version = rowlocked ? rowlocked_version(slot) : NULL;
}

/*
 * The sku's stripes as a statement selects them (stripe, on_hand, reserved:
 * in stripe order) into *rows; returns how many (none: unstriped).
 */
static int
stripes_by_statement(Statement *st, const char *sku, StripeRow **rows)
{
	Datum		   values[1] = {CStringGetTextDatum(sku)};
	int			   n = stmt_exec(st, values, NULL, false);
	SPITupleTable *tt = SPI_tuptable;
	int			   i;

	*rows = palloc(sizeof(StripeRow) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		(*rows)[i].stripe = stmt_int4(st, tt, i, 0);
		(*rows)[i].on_hand = stmt_int8(st, tt, i, 1);
		(*rows)[i].reserved = stmt_int8(st, tt, i, 2);
		(*rows)[i].version = NULL;
	}
	return n;
}

/*
 * The sku's stripes as the statement's snapshot sees them, in stripe order
 * (none: unstriped).
 */
int
store_stripes_read(const char *sku, StripeRow **rows)
{
	static Statement read = {
		.sql =
			"SELECT stripe, on_hand, reserved FROM checkout.inventory_stripes "
			"WHERE sku = $1 ORDER BY stripe",
		.nargs = 1,
		.argtypes = {TEXTOID},
		.generic = true,
		.columns = {"stripe", "on_hand", "reserved"},
	};
	KeyScan ks;
	int		cap = 8;
	int		n = 0;

	if (!key_open(&ks, DT_STRIPES, ACL_SELECT, true))
		return stripes_by_statement(&read, sku, rows);
	*rows = palloc(sizeof(StripeRow) * cap);
	key_scan(&ks, CStringGetTextDatum(sku));
	while (key_next(&ks))
	{
		CHECK_FOR_INTERRUPTS();
		if (n == cap)
		{
			cap *= 2;
			*rows = repalloc(*rows, sizeof(StripeRow) * cap);
		}
		stripe_row_from_slot(&ks, ks.found, &(*rows)[n++], false);
	}
	key_close(&ks);
	return n;
}

/*
 * An unstriped sku's inventory row, row-locked (FOR NO KEY UPDATE) or read, by
 * a statement.
 */
static void
ledger_row_by_statement(const char *sku, bool rowlock, LedgerRow *row)
{
	static Statement read[2] = {
		{
			.sql =
				"SELECT on_hand, reserved, unit_price FROM checkout.inventory "
				"WHERE sku = $1",
			.nargs = 1,
			.argtypes = {TEXTOID},
			.generic = true,
			.columns = {"on_hand", "reserved", "unit_price"},
		},
		{
			.sql =
				"SELECT on_hand, reserved, unit_price FROM checkout.inventory "
				"WHERE sku = $1 FOR NO KEY UPDATE",
			.nargs = 1,
			.argtypes = {TEXTOID},
			.generic = true,
			.columns = {"on_hand", "reserved", "unit_price"},
		},
	};
	Statement *st = &read[rowlock];
	Datum	   values[1] = {CStringGetTextDatum(sku)};

	row->version = NULL;
	row->rowlocked = false;
	row->found = stmt_exec(st, values, NULL, false) > 0;
	if (!row->found)
		return;
	row->rowlocked = rowlock;
	row->on_hand = stmt_int8(st, SPI_tuptable, 0, 0);
	row->reserved = stmt_int8(st, SPI_tuptable, 0, 1);
	row->unit_price = stmt_int8(st, SPI_tuptable, 0, 2);
}

/*
 * The inventory rows of n skus (in sku order, each once), and the stripes
 * of a striped sku as read.  With rowlock, the rows of unstriped skus are
 * row-locked (FOR NO KEY UPDATE) as they come, up to the first striped sku:
 * the rows after it are only read, for the caller to row-lock in sku order
 * once it has taken that sku's stripes (store_ledger_rowlock,
 * store_stripes_rowlock).  A striped sku's inventory row is never
 * row-locked here: its buyers take stripes.
 * NO KEY keeps the foreign-key checks of checkout.reservations from blocking.
 */
void
store_ledger_rows(char *const *skus, int n, bool rowlock, LedgerRow *rows)
{
	bool	striping;
	KeyScan ks;
	int		i;

	store_stock_table_lock();
	striping = store_striping_in_use();
	for (i = 0; i < n; i++)
	{
		rows[i].n_stripes = 0;
		rows[i].stripes = NULL;
		if (striping)
			rows[i].n_stripes = store_stripes_read(skus[i], &rows[i].stripes);
	}
	if (!key_open(&ks, DT_INVENTORY,
				  rowlock ? ACL_SELECT | ACL_UPDATE : ACL_SELECT, true))
	{
		for (i = 0; i < n; i++)
		{
			CHECK_FOR_INTERRUPTS();
			if (rows[i].n_stripes > 0)
				rowlock = false;
			ledger_row_by_statement(skus[i], rowlock, &rows[i]);
		}
	}
	else
	{
		for (i = 0; i < n; i++)
		{
			CHECK_FOR_INTERRUPTS();
			rows[i].found = rows[i].rowlocked = false;
			rows[i].version = NULL;
			if (rows[i].n_stripes > 0)
				rowlock = false;
			if (!key_find(&ks, CStringGetTextDatum(skus[i])))
				continue;
			if (!rowlock)
				ledger_row_from_slot(&ks, ks.found, &rows[i], false);
			else if (key_rowlock(&ks, LockTupleNoKeyExclusive))
				ledger_row_from_slot(&ks, ks.rowlocked, &rows[i], true);
		}
		key_close(&ks);
	}
	/* a striped sku's stock is its stripes' */
	for (i = 0; i < n; i++)
		if (rows[i].n_stripes > 0 && rows[i].found)
			store_stripes_totals(rows[i].stripes, rows[i].n_stripes,
								 &rows[i].on_hand, &rows[i].reserved);
}

/*
 * Row-locks one unstriped sku's inventory row (a row store_ledger_rows only
 * read); false when gone.
 */
bool
store_ledger_rowlock(const char *sku, LedgerRow *row)
{
	KeyScan ks;

	Assert(row->n_stripes == 0);
	if (!key_open(&ks, DT_INVENTORY, ACL_SELECT | ACL_UPDATE, true))
		ledger_row_by_statement(sku, true, row);
	else
	{
		row->found = row->rowlocked = false;
		if (key_find(&ks, CStringGetTextDatum(sku)) &&
			key_rowlock(&ks, LockTupleNoKeyExclusive))
			ledger_row_from_slot(&ks, ks.rowlocked, row, true);
		key_close(&ks);
	}
	return row->found;
}

/*
 * Row-locks stripes of a sku (numbers in ascending order), waiting for
 * their holders; rows[i] gets stripe numbers[i] as row-locked.  False when
 * one does not exist, or no longer has that key once row-locked (only a
 * DELETE or an UPDATE of the key outside checkout_stripe does that:
 * checkout_stripe waits for the stock table lock, store_stock_table_lock).
 */
bool
store_stripes_rowlock(const char *sku, const int32 *numbers, int n,
					  StripeRow *rows)
{
	static Statement rowlock = {
		.sql = "SELECT on_hand, reserved FROM checkout.inventory_stripes "
			   "WHERE sku = $1 AND stripe = $2 FOR NO KEY UPDATE",
		.nargs = 2,
		.argtypes = {TEXTOID, INT4OID},
		.generic = true,
		.columns = {"on_hand", "reserved"},
	};
	KeyScan ks;
	bool	all = true;
	int		i;

	if (key_open(&ks, DT_STRIPES, ACL_SELECT | ACL_UPDATE, true))
	{
		for (i = 0; i < n && all; i++)
		{
			Datum key[2] = {CStringGetTextDatum(sku),
							Int32GetDatum(numbers[i])};

			CHECK_FOR_INTERRUPTS();
			all = key_find_prefix(&ks, key, 2) &&
				  key_rowlock(&ks, LockTupleNoKeyExclusive);
			if (all)
				stripe_row_from_slot(&ks, ks.rowlocked, &rows[i], true);
		}
		key_close(&ks);
		return all;
	}
	for (i = 0; i < n && all; i++)
	{
		Datum values[2] = {CStringGetTextDatum(sku),
						   Int32GetDatum(numbers[i])};

		CHECK_FOR_INTERRUPTS();
		all = stmt_exec(&rowlock, values, NULL, false) > 0;
		if (all)
		{
			rows[i].stripe = numbers[i];
			rows[i].on_hand = stmt_int8(&rowlock, SPI_tuptable, 0, 0);
			rows[i].reserved = stmt_int8(&rowlock, SPI_tuptable, 0, 1);
			rows[i].version = NULL;
		}
	}
	return all;
}

/*
 * A ledger update reached no row: the row this transaction row-locked is not
 * where it was.  That cannot happen while the row lock holds; should it,
 * the transaction must not commit a reservation without its ledger change.
 */
static void
ledger_row_moved(const char *sku)
{
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("checkout: the stock row of sku %s moved under its row lock",
					quote_user_text(sku))));
}

/*
 * Row writes of the stock tables, begun when first needed and ended
 * together; false from stock_write when the direct path may not serve one
 * of them (nothing was begun for it).
 */
typedef struct StockWrites
{
	RowWrite held;	  /* checkout.reservations */
	RowWrite ledger;  /* checkout.inventory */
	RowWrite stripes; /* checkout.inventory_stripes */
	bool	 begun[3];
} StockWrites;

static RowWrite *
stock_write(StockWrites *sw, int which, AclMode need)
{
	static const DirectTable tables[3] = {DT_RESERVATIONS, DT_INVENTORY,
										  DT_STRIPES};
	RowWrite				*w = which == 0	  ? &sw->held
								 : which == 1 ? &sw->ledger
											  : &sw->stripes;

	if (!sw->begun[which])
		sw->begun[which] = row_write_begin(w, tables[which], need);
	return sw->begun[which] ? w : NULL;
}

static void
stock_writes_end(StockWrites *sw)
{
	if (sw->begun[2])
		row_write_end(&sw->stripes);
	if (sw->begun[1])
		row_write_end(&sw->ledger);
	if (sw->begun[0])
		row_write_end(&sw->held);
}

/* Whether the direct path may write every table the parts touch. */
static bool
stock_writes_direct(StockWrites *sw, const ReservedPart *parts, int n,
					AclMode held_need)
{
	int i;

	memset(sw, 0, sizeof(*sw));
	if (!stock_write(sw, 0, held_need))
		return false;
	for (i = 0; i < n; i++)
		if (parts[i].version == NULL ||
			!stock_write(sw, parts[i].stripe == 0 ? 1 : 2, ACL_UPDATE))
		{
			stock_writes_end(sw);
			return false;
		}
	return true;
}

/*
 * Reserves quantity of each part's stripe of its sku (0: the inventory
 * row), whose row the caller holds row-locked: the reservations' rows inserted
 * and each row's `reserved` raised.  Each part's version is the row's
 * latest afterwards (NULL after a statement).
 */
void
store_reservation_insert(int64 lock_id, ReservedPart *parts, int n)
{
	/* no stripe column: the statement serves a 0.2.0 schema too */
	static Statement reserve = {
		.sql = "INSERT INTO checkout.reservations (lock_id, sku, quantity) "
			   "VALUES ($1, $2, $3)",
		.nargs = 3,
		.argtypes = {INT8OID, TEXTOID, INT8OID},
		.generic = true,
	};
	static Statement reserve_stripe = {
		.sql = "INSERT INTO checkout.reservations (lock_id, sku, quantity, "
			   "  stripe) "
			   "VALUES ($1, $2, $3, $4)",
		.nargs = 4,
		.argtypes = {INT8OID, TEXTOID, INT8OID, INT4OID},
		.generic = true,
	};
	static Statement raise_row = {
		.sql = "UPDATE checkout.inventory "
			   "SET reserved = reserved + $2 "
			   "WHERE sku = $1",
		.nargs = 2,
		.argtypes = {TEXTOID, INT8OID},
		.generic = true,
	};
	static Statement raise_stripe = {
		.sql =
			"UPDATE checkout.inventory_stripes SET reserved = reserved + $3 "
			"WHERE sku = $1 AND stripe = $2",
		.nargs = 3,
		.argtypes = {TEXTOID, INT4OID, INT8OID},
		.generic = true,
	};
	static const int held_columns[4] = {RS_LOCK_ID, RS_SKU, RS_QUANTITY,
										RS_STRIPE};
	static const int ledger_reserved[1] = {INV_RESERVED};
	static const int stripe_reserved[1] = {ST_RESERVED};
	StockWrites		 sw;
	int				 i;

	if (stock_writes_direct(&sw, parts, n, ACL_INSERT))
	{
		for (i = 0; i < n; i++)
		{
			Datum values[4];
			bool  isnull[4] = {false, false, false, false};

			CHECK_FOR_INTERRUPTS();
			values[0] = Int64GetDatum(lock_id);
			values[1] = CStringGetTextDatum(parts[i].sku);
			values[2] = Int64GetDatum(parts[i].quantity);
			values[3] = Int32GetDatum(parts[i].stripe);
			/*
			 * the stock row first, then what holds it: as the statements below
			 */
			if (parts[i].stripe == 0)
				row_add(&sw.ledger, &parts[i].version->tid, ledger_reserved,
						&parts[i].quantity, 1);
			else
				row_add(&sw.stripes, &parts[i].version->tid, stripe_reserved,
						&parts[i].quantity, 1);
			row_insert(&sw.held, held_columns, values, isnull, 4);
		}
		stock_writes_end(&sw);
		return;
	}
	for (i = 0; i < n; i++)
	{
		Datum held[4];
		Datum raise[3];
		bool  striped = parts[i].stripe != 0;

		CHECK_FOR_INTERRUPTS();
		held[0] = Int64GetDatum(lock_id);
		held[1] = raise[0] = CStringGetTextDatum(parts[i].sku);
		held[2] = Int64GetDatum(parts[i].quantity);
		held[3] = raise[1] = Int32GetDatum(parts[i].stripe);
		raise[striped ? 2 : 1] = Int64GetDatum(parts[i].quantity);
		if (stmt_exec(striped ? &raise_stripe : &raise_row, raise, NULL,
					  false) != 1)
			ledger_row_moved(parts[i].sku);
		stmt_exec(striped ? &reserve_stripe : &reserve, held, NULL, false);
		/* the version the caller held is no longer the row's latest */
		parts[i].version = NULL;
	}
}

/* One reservation row of a lock, as read to be released or sold. */
typedef struct HeldPart
{
	char		   *sku;
	int32			stripe;
	int64			quantity;
	ItemPointerData tid;
} HeldPart;

/* The totals of a sku's stripes. */
void
store_stripes_totals(const StripeRow *rows, int n, int64 *on_hand,
					 int64 *reserved)
{
	int k;

	*on_hand = *reserved = 0;
	for (k = 0; k < n; k++)
	{
		*on_hand += rows[k].on_hand;
		*reserved += rows[k].reserved;
	}
}

/*
 * sku order: the column's collation, as every ORDER BY sku of the statements
 */
int
store_sku_cmp(const char *a, const char *b)
{
	return varstr_cmp(a, strlen(a), b, strlen(b), DEFAULT_COLLATION_OID);
}

/*
 * order[] sorted by (ids[i], held[i].sku): what moved, grouped per lock and
 * sku
 */
typedef struct HeldByLock
{
	const int64	   *ids;
	const HeldPart *held;
} HeldByLock;

static int
cmp_held_by_lock(const void *a, const void *b, void *arg)
{
	const HeldByLock *by = (const HeldByLock *) arg;
	int				  x = *(const int *) a;
	int				  y = *(const int *) b;

	if (by->ids[x] != by->ids[y])
		return by->ids[x] < by->ids[y] ? -1 : 1;
	return store_sku_cmp(by->held[x].sku, by->held[y].sku);
}

static void
sort_held_by_lock(int *order, const int64 *ids, const HeldPart *held, int n)
{
	HeldByLock by = {ids, held};

	qsort_arg(order, n, sizeof(int), cmp_held_by_lock, &by);
}

static int
cmp_held_by_row(const void *a, const void *b)
{
	const HeldPart *x = (const HeldPart *) a;
	const HeldPart *y = (const HeldPart *) b;
	int				c = store_sku_cmp(x->sku, y->sku);

	return c != 0 ? c : (x->stripe > y->stripe) - (x->stripe < y->stripe);
}

/*
 * The quantities per stock row of the parts held (sorted by row,
 * cmp_held_by_row): the inventory rows' (stripe 0) or the stripes'; returns
 * how many rows.
 */
static int
sum_held_per_row(const HeldPart *sorted, int n, bool stripes_only, char **skus,
				 int32 *stripes, int64 *quantities)
{
	int m = 0;
	int i;

	for (i = 0; i < n; i++)
	{
		if ((sorted[i].stripe != 0) != stripes_only)
			continue;
		if (m > 0 && stripes[m - 1] == sorted[i].stripe &&
			strcmp(skus[m - 1], sorted[i].sku) == 0)
		{
			quantities[m - 1] += sorted[i].quantity;
			continue;
		}
		skus[m] = sorted[i].sku;
		stripes[m] = sorted[i].stripe;
		quantities[m] = sorted[i].quantity;
		m++;
	}
	return m;
}

/*
 * One lock's held stock moved by the direct path: its reservations read and
 * row-locked in (sku, stripe) order (the primary key's), every stock row
 * row-locked in that order, then each reservation deleted and its row
 * updated.  False, with nothing written, when the direct path may not serve.
 * The caller holds the lock's row row-locked, as every writer of its
 * reservations does; a reservation is row-locked all the same, as a DELETE
 * waits for a concurrent update of its row (a DBA's) and then takes the row
 * as that left it, or passes it over once it is no longer the lock's.
 */
static bool
move_one_lock(int64 lock_id, bool sell, HeldPart **out, int *n_out)
{
	static const int ledger_columns[2] = {INV_RESERVED, INV_ON_HAND};
	static const int stripe_columns[2] = {ST_RESERVED, ST_ON_HAND};
	KeyScan			 ks;
	HeldPart		*held;
	ReservedPart	*parts;
	StockWrites		 sw;
	int				 cap = 4;
	int				 n = 0;
	int				 i;

	if (!key_open(&ks, DT_RESERVATIONS, ACL_SELECT | ACL_DELETE, true))
		return false;
	held = palloc(sizeof(HeldPart) * cap);
	key_scan(&ks, Int64GetDatum(lock_id));
	while (key_next(&ks))
	{
		bool isnull;

		CHECK_FOR_INTERRUPTS();
		if (!key_rowlock(&ks, LockTupleExclusive))
			continue;
		if (n == cap)
		{
			cap *= 2;
			held = repalloc(held, sizeof(HeldPart) * cap);
		}
		held[n].tid = *slot_tid(ks.rowlocked);
		held[n].sku = TextDatumGetCString(
			slot_column(&ks, ks.rowlocked, RS_SKU, &isnull));
		held[n].quantity = DatumGetInt64(
			slot_column(&ks, ks.rowlocked, RS_QUANTITY, &isnull));
		held[n].stripe = DatumGetInt32(
			slot_column(&ks, ks.rowlocked, RS_STRIPE, &isnull));
		n++;
	}
	key_close(&ks);

	/* row-lock every row first, in (sku, stripe) order, then move */
	parts = palloc(sizeof(ReservedPart) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		CHECK_FOR_INTERRUPTS();
		parts[i].sku = held[i].sku;
		parts[i].stripe = held[i].stripe;
		parts[i].quantity = held[i].quantity;
		if (held[i].stripe == 0)
		{
			LedgerRow row = {0};

			/* a reservation's sku is in the inventory (foreign key) */
			if (!store_ledger_rowlock(held[i].sku, &row))
				ledger_row_moved(held[i].sku);
			parts[i].version = row.version;
		}
		else
		{
			StripeRow row;

			if (!store_stripes_rowlock(held[i].sku, &held[i].stripe, 1, &row))
				ledger_row_moved(held[i].sku);
			parts[i].version = row.version;
		}
	}
	if (!stock_writes_direct(&sw, parts, n, ACL_DELETE))
		return false; /* the rows stay row-locked; statements move them */
	for (i = 0; i < n; i++)
	{
		int64 deltas[2] = {-held[i].quantity, -held[i].quantity};

		CHECK_FOR_INTERRUPTS();
		row_delete(&sw.held, &held[i].tid);
		if (held[i].stripe == 0)
			row_add(&sw.ledger, &parts[i].version->tid, ledger_columns, deltas,
					sell ? 2 : 1);
		else
			row_add(&sw.stripes, &parts[i].version->tid, stripe_columns,
					deltas, sell ? 2 : 1);
	}
	stock_writes_end(&sw);
	*out = held;
	*n_out = n;
	return true;
}

/*
 * Row-locks, in (sku, stripe) order, the stock rows of everything the locks
 * hold: a set of locks and a checkout sharing skus never deadlock.
 */
void
store_held_stock_rowlock(const int64 *lock_ids, int n)
{
	static Statement held_rows = {
		.sql = "SELECT DISTINCT r.sku, r.stripe FROM checkout.reservations r "
			   "WHERE r.lock_id = ANY ($1) ORDER BY r.sku, r.stripe",
		.nargs = 1,
		.argtypes = {INT8ARRAYOID},
		.columns = {"sku", "stripe"},
	};
	/* a schema not yet updated: every reservation is of an inventory row */
	static Statement rowlock_ledger = {
		.sql =
			"SELECT i.sku "
			"FROM checkout.inventory i "
			"WHERE i.sku IN (SELECT r.sku FROM checkout.reservations r WHERE "
			"  r.lock_id = ANY ($1)) "
			"ORDER BY i.sku "
			"FOR NO KEY "
			"UPDATE",
		.nargs = 1,
		.argtypes = {INT8ARRAYOID},
	};
	Datum		   values[1] = {int8_array(lock_ids, n)};
	SPITupleTable *tt;
	int			   rows;
	int			   i;

	store_stock_table_lock();
	if (!direct_table_exists(DT_STRIPES))
	{
		stmt_exec(&rowlock_ledger, values, NULL, false);
		return;
	}
	rows = stmt_exec(&held_rows, values, NULL, false);
	tt = SPI_tuptable;
	for (i = 0; i < rows; i++)
	{
		char *sku = stmt_text(&held_rows, tt, i, 0);
		int32 stripe = stmt_int4(&held_rows, tt, i, 1);

		CHECK_FOR_INTERRUPTS();
		if (stripe == 0)
		{
			LedgerRow row = {0};

			if (!store_ledger_rowlock(sku, &row))
				ledger_row_moved(sku);
		}
		else
		{
			StripeRow row;

			if (!store_stripes_rowlock(sku, &stripe, 1, &row))
				ledger_row_moved(sku);
		}
	}
}

static void
moved_alloc(MovedStock *m, int n)
{
	m->n = 0;
	m->lock_ids = palloc(sizeof(int64) * Max(n, 1));
	m->skus = palloc(sizeof(char *) * Max(n, 1));
	m->quantities = palloc(sizeof(int64) * Max(n, 1));
}

/* Adds what moved of a lock's sku, summing the stripes of one (lock, sku). */
static void
moved_add(MovedStock *m, int64 lock_id, char *sku, int64 quantity)
{
	if (m->n > 0 && m->lock_ids[m->n - 1] == lock_id &&
		strcmp(m->skus[m->n - 1], sku) == 0)
	{
		m->quantities[m->n - 1] += quantity;
		return;
	}
	m->lock_ids[m->n] = lock_id;
	m->skus[m->n] = sku;
	m->quantities[m->n] = quantity;
	m->n++;
}

/*
 * Releases (sell = false) or sells (sell = true) everything the locks hold,
 * row-locking the stock rows in (sku, stripe) order first, so that a set of
 * locks and a checkout sharing skus never deadlock.  One update per stock row:
 * a sweep of thousands of locks on a hot sku touches its row once.  moved gets
 * what moved, per lock and sku, ordered by lock_id and sku.
 */
void
store_held_stock_move(const int64 *lock_ids, int n, bool sell,
					  MovedStock *moved)
{
	/*
	 * separate statements, not one with data-modifying CTEs: a rule on a table
	 * forbids those
	 */
	static Statement take = {
		.sql =
			"DELETE FROM checkout.reservations r WHERE r.lock_id = ANY ($1) "
			"RETURNING r.lock_id, r.sku, r.stripe, r.quantity",
		.nargs = 1,
		.argtypes = {INT8ARRAYOID},
		.columns = {"lock_id", "sku", "stripe", "quantity"},
	};
	static Statement take_unstriped = {
		.sql =
			"DELETE FROM checkout.reservations r WHERE r.lock_id = ANY ($1) "
			"RETURNING r.lock_id, r.sku, 0 AS stripe, r.quantity",
		.nargs = 1,
		.argtypes = {INT8ARRAYOID},
		.columns = {"lock_id", "sku", "stripe", "quantity"},
	};
	static Statement release_rows = {
		.sql = "UPDATE checkout.inventory i "
			   "SET reserved = i.reserved - m.q "
			   "FROM ROWS FROM (pg_catalog.unnest($1::text[]), "
			   "  pg_catalog.unnest($2::int8[])) AS m(sku, q) "
			   "WHERE i.sku = m.sku",
		.nargs = 2,
		.argtypes = {TEXTARRAYOID, INT8ARRAYOID},
	};
	static Statement sell_rows = {
		.sql = "UPDATE checkout.inventory i "
			   "SET on_hand = i.on_hand - m.q, reserved = i.reserved - m.q "
			   "FROM ROWS FROM (pg_catalog.unnest($1::text[]), "
			   "  pg_catalog.unnest($2::int8[])) AS m(sku, q) "
			   "WHERE i.sku = m.sku",
		.nargs = 2,
		.argtypes = {TEXTARRAYOID, INT8ARRAYOID},
	};
	static Statement release_stripes = {
		.sql = "UPDATE checkout.inventory_stripes t "
			   "SET reserved = t.reserved - m.q "
			   "FROM ROWS FROM (pg_catalog.unnest($1::text[]), "
			   "  pg_catalog.unnest($2::int4[]), "
			   "  pg_catalog.unnest($3::int8[])) AS m(sku, stripe, q) "
			   "WHERE t.sku = m.sku AND t.stripe = m.stripe",
		.nargs = 3,
		.argtypes = {TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID},
	};
	static Statement sell_stripes = {
		.sql = "UPDATE checkout.inventory_stripes t "
			   "SET on_hand = t.on_hand - m.q, reserved = t.reserved - m.q "
			   "FROM ROWS FROM (pg_catalog.unnest($1::text[]), "
			   "  pg_catalog.unnest($2::int4[]), "
			   "  pg_catalog.unnest($3::int8[])) AS m(sku, stripe, q) "
			   "WHERE t.sku = m.sku AND t.stripe = m.stripe",
		.nargs = 3,
		.argtypes = {TEXTARRAYOID, INT4ARRAYOID, INT8ARRAYOID},
	};
	Statement *st = direct_table_exists(DT_STRIPES) ? &take : &take_unstriped;
	HeldPart  *held;
	int		   n_held;
	Datum	   values[3];
	SPITupleTable *tt;
	int			   rows;
	int			   i;

	store_stock_table_lock();
	if (n == 1 && move_one_lock(lock_ids[0], sell, &held, &n_held))
	{
		moved_alloc(moved, n_held);
		for (i = 0; i < n_held; i++)
			moved_add(moved, lock_ids[0], held[i].sku, held[i].quantity);
		return;
	}
	store_held_stock_rowlock(lock_ids, n);
	values[0] = int8_array(lock_ids, n);
	rows = stmt_exec(st, values, NULL, false);
	tt = SPI_tuptable;
	held = palloc(sizeof(HeldPart) * Max(rows, 1));
	for (i = 0; i < rows; i++)
	{
		CHECK_FOR_INTERRUPTS();
		ItemPointerSetInvalid(&held[i].tid);
		held[i].sku = stmt_text(st, tt, i, 1);
		held[i].stripe = stmt_int4(st, tt, i, 2);
		held[i].quantity = stmt_int8(st, tt, i, 3);
	}
	/* what moved, per lock and sku, for the events */
	{
		int64 *ids = palloc(sizeof(int64) * Max(rows, 1));
		int	  *order = palloc(sizeof(int) * Max(rows, 1));

		for (i = 0; i < rows; i++)
		{
			ids[i] = stmt_int8(st, tt, i, 0);
			order[i] = i;
		}
		sort_held_by_lock(order, ids, held, rows);
		moved_alloc(moved, rows);
		for (i = 0; i < rows; i++)
			moved_add(moved, ids[order[i]], held[order[i]].sku,
					  held[order[i]].quantity);
	}
	/* one update per stock row: the inventory rows, then the stripes */
	qsort(held, rows, sizeof(HeldPart), cmp_held_by_row);
	for (i = 0; i < 2; i++)
	{
		char **skus = palloc(sizeof(char *) * Max(rows, 1));
		int32 *stripes = palloc(sizeof(int32) * Max(rows, 1));
		int64 *quantities = palloc(sizeof(int64) * Max(rows, 1));
		int	   m = sum_held_per_row(held, rows, i == 1, skus, stripes,
									quantities);

		if (m == 0)
			continue;
		values[0] = text_array(skus, m);
		if (i == 0)
		{
			values[1] = int8_array(quantities, m);
			stmt_exec(sell ? &sell_rows : &release_rows, values, NULL, false);
		}
		else
		{
			values[1] = int4_array(stripes, m);
			values[2] = int8_array(quantities, m);
			stmt_exec(sell ? &sell_stripes : &release_stripes, values, NULL,
					  false);
		}
	}
}
/* ---- striping (checkout_stripe, checkout_rebalance, restocks) ---- */

/*
 * Takes the striping table lock, which changing a sku's striping needs:
 * SHARE ROW EXCLUSIVE on checkout.inventory_stripes waits for every call
 * moving stock (each holds the stock table lock, store_stock_table_lock)
 * and keeps new ones out until the transaction ends.
 */
void
store_striping_table_lock(void)
{
	if (!direct_table_exists(DT_STRIPES))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("striped stock needs the 0.3.0 schema"),
						errhint("Run ALTER EXTENSION checkout UPDATE.")));
	LockRelationOid(direct_table_known_relid(DT_STRIPES),
					ShareRowExclusiveLock);
}

/*
 * Backends look at whether any sku is striped again (store_striping_in_use).
 */
void
store_striping_changed(void)
{
	CacheInvalidateRelcacheByRelid(direct_table_relid(DT_STRIPES));
}

/*
 * Row-locks the sku's inventory row FOR UPDATE NOWAIT (striping) or FOR NO
 * KEY UPDATE (rebalance, waiting); false when the sku is not in the
 * inventory.  NOWAIT: a restock holding the row wants the stock table lock,
 * which waits for the striping table lock the caller holds.
 */
bool
store_sku_rowlock(const char *sku, bool for_striping, int64 *on_hand,
				  int64 *reserved)
{
	static Statement rowlock[2] = {
		{
			.sql = "SELECT on_hand, reserved FROM checkout.inventory "
				   "WHERE sku = $1 FOR NO KEY UPDATE",
			.nargs = 1,
			.argtypes = {TEXTOID},
			.generic = true,
			.columns = {"on_hand", "reserved"},
		},
		{
			.sql = "SELECT on_hand, reserved FROM checkout.inventory "
				   "WHERE sku = $1 FOR UPDATE NOWAIT",
			.nargs = 1,
			.argtypes = {TEXTOID},
			.generic = true,
			.columns = {"on_hand", "reserved"},
		},
	};
	Statement *st = &rowlock[for_striping];
	Datum	   values[1] = {CStringGetTextDatum(sku)};

	if (stmt_exec(st, values, NULL, false) == 0)
		return false;
	*on_hand = stmt_int8(st, SPI_tuptable, 0, 0);
	*reserved = stmt_int8(st, SPI_tuptable, 0, 1);
	return true;
}

/* The sku's stripes, row-locked in stripe order (none: unstriped). */
int
store_stripes_rowlock_all(const char *sku, StripeRow **rows)
{
	static Statement rowlock = {
		.sql =
			"SELECT stripe, on_hand, reserved FROM checkout.inventory_stripes "
			"WHERE sku = $1 ORDER BY stripe FOR NO KEY UPDATE",
		.nargs = 1,
		.argtypes = {TEXTOID},
		.generic = true,
		.columns = {"stripe", "on_hand", "reserved"},
	};

	return stripes_by_statement(&rowlock, sku, rows);
}

/* The skus that are striped, in sku order. */
int
store_striped_skus(char ***skus)
{
	static Statement striped = {
		.sql =
			"SELECT DISTINCT sku FROM checkout.inventory_stripes ORDER BY sku",
		.columns = {"sku"},
	};
	int n;
	int i;

	if (!direct_table_exists(DT_STRIPES))
		return 0;
	n = stmt_exec(&striped, NULL, NULL, false);
	*skus = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
		(*skus)[i] = stmt_text(&striped, SPI_tuptable, i, 0);
	return n;
}

/*
 * Sets the on_hand of the sku's stripes (rows[i].stripe gets rows[i].on_hand).
 */
void
store_stripes_set_on_hand(const char *sku, const StripeRow *rows, int n)
{
	static Statement set = {
		.sql = "UPDATE checkout.inventory_stripes t "
			   "SET on_hand = m.on_hand "
			   "FROM ROWS FROM (pg_catalog.unnest($2::int4[]), "
			   "  pg_catalog.unnest($3::int8[])) AS m(stripe, on_hand) "
			   "WHERE t.sku = $1 AND t.stripe = m.stripe AND t.on_hand <> "
			   "  m.on_hand",
		.nargs = 3,
		.argtypes = {TEXTOID, INT4ARRAYOID, INT8ARRAYOID},
	};
	int32 *stripes = palloc(sizeof(int32) * Max(n, 1));
	int64 *on_hand = palloc(sizeof(int64) * Max(n, 1));
	Datum  values[3];
	int	   i;

	for (i = 0; i < n; i++)
	{
		stripes[i] = rows[i].stripe;
		on_hand[i] = rows[i].on_hand;
	}
	values[0] = CStringGetTextDatum(sku);
	values[1] = int4_array(stripes, n);
	values[2] = int8_array(on_hand, n);
	stmt_exec(&set, values, NULL, false);
}

/*
 * Sets the sku's inventory row's totals (a fold, or the units of a sku made
 * unstriped), as the extension's own write: the restock trigger lets it be.
 */
static bool own_totals_write = false;

void
store_sku_set_totals(const char *sku, int64 on_hand, int64 reserved)
{
	static Statement set = {
		.sql = "UPDATE checkout.inventory SET on_hand = $2, reserved = $3 "
			   "WHERE sku = $1",
		.nargs = 3,
		.argtypes = {TEXTOID, INT8OID, INT8OID},
		.generic = true,
	};
	Datum values[3] = {CStringGetTextDatum(sku), Int64GetDatum(on_hand),
					   Int64GetDatum(reserved)};

	own_totals_write = true;
	PG_TRY();
	{
		stmt_exec(&set, values, NULL, false);
	}
	PG_FINALLY();
	{
		own_totals_write = false;
	}
	PG_END_TRY();
}

/*
 * Whether the inventory row being updated is the extension's own totals write.
 */
bool
store_own_totals_write(void)
{
	return own_totals_write;
}

/*
 * Lays the sku's units out anew: its stripes replaced by n stripes holding
 * on_hand[i] units with reserved[i] of them reserved (n = 0: no stripes,
 * the inventory row holds them).  The caller has moved the sku's
 * reservations to match (store_reservations_restripe) and holds the
 * striping table lock and the sku's inventory row row-locked.
 */
void
store_stripes_replace(const char *sku, int n, const int64 *on_hand,
					  const int64 *reserved)
{
	static Statement drop = {
		.sql = "DELETE FROM checkout.inventory_stripes WHERE sku = $1",
		.nargs = 1,
		.argtypes = {TEXTOID},
	};
	static Statement add = {
		.sql = "INSERT INTO checkout.inventory_stripes (sku, stripe, on_hand, "
			   "  reserved) "
			   "SELECT $1, t.n::integer, t.on_hand, t.reserved "
			   "FROM ROWS FROM (pg_catalog.unnest($2::int8[]), "
			   "  pg_catalog.unnest($3::int8[])) "
			   "WITH ORDINALITY AS t(on_hand, reserved, n)",
		.nargs = 3,
		.argtypes = {TEXTOID, INT8ARRAYOID, INT8ARRAYOID},
	};
	Datum values[3] = {CStringGetTextDatum(sku), (Datum) 0, (Datum) 0};

	stmt_exec(&drop, values, NULL, false);
	if (n == 0)
		return;
	values[1] = int8_array(on_hand, n);
	values[2] = int8_array(reserved, n);
	stmt_exec(&add, values, NULL, false);
}

/*
 * Gathers every reservation of the sku per lock into one row, in the
 * stripe `stripes` gives the lock (lock_id % stripes + 1; 0 when stripes is
 * 1); returns how many units each stripe then holds (reserved[k] for
 * stripe k + 1, or reserved[0] for the inventory row).
 */
void
store_reservations_restripe(const char *sku, int stripes, int64 *reserved)
{
	static Statement take = {
		.sql = "DELETE FROM checkout.reservations WHERE sku = $1 "
			   "RETURNING lock_id, quantity, reserved_at",
		.nargs = 1,
		.argtypes = {TEXTOID},
		.columns = {"lock_id", "quantity", "reserved_at"},
	};
	static Statement put = {
		.sql =
			"INSERT INTO checkout.reservations (lock_id, sku, quantity, "
			"  reserved_at, stripe) "
			"SELECT t.lock_id, $1, pg_catalog.sum(t.quantity)::bigint, "
			"  pg_catalog.min(t.reserved_at), "
			"  CASE WHEN $2 = 1 THEN 0 ELSE (t.lock_id % $2)::integer + 1 END "
			"FROM ROWS FROM (pg_catalog.unnest($3::int8[]), "
			"  pg_catalog.unnest($4::int8[]), "
			"  pg_catalog.unnest($5::timestamptz[])) AS t(lock_id, quantity, "
			"  reserved_at) "
			"GROUP BY t.lock_id",
		.nargs = 5,
		.argtypes = {TEXTOID, INT4OID, INT8ARRAYOID, INT8ARRAYOID,
					 TIMESTAMPTZARRAYOID},
	};
	Datum values[5] = {CStringGetTextDatum(sku), Int32GetDatum(stripes)};
	SPITupleTable *tt;
	int			   rows = stmt_exec(&take, values, NULL, false);
	int64		  *lock_ids = palloc(sizeof(int64) * Max(rows, 1));
	int64		  *quantities = palloc(sizeof(int64) * Max(rows, 1));
	Datum		  *times = palloc(sizeof(Datum) * Max(rows, 1));
	int			   i;

	tt = SPI_tuptable;
	memset(reserved, 0, sizeof(int64) * Max(stripes, 1));
	for (i = 0; i < rows; i++)
	{
		lock_ids[i] = stmt_int8(&take, tt, i, 0);
		quantities[i] = stmt_int8(&take, tt, i, 1);
		times[i] = TimestampTzGetDatum(stmt_timestamptz(&take, tt, i, 2));
		reserved[stripes == 1 ? 0 : lock_ids[i] % stripes] += quantities[i];
	}
	if (rows == 0)
		return;
	values[2] = int8_array(lock_ids, rows);
	values[3] = int8_array(quantities, rows);
	values[4] = PointerGetDatum(
		construct_array(times, rows, TIMESTAMPTZOID, sizeof(TimestampTz),
						FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	stmt_exec(&put, values, NULL, false);
}

/* ---- price snapshots ---- */

void
store_snapshots_insert(int64 lock_id, int n, char *const *line_ids,
					   char *const *skus, const int64 *quantities,
					   const int64 *cart_prices, const int64 *locked_prices,
					   const Datum *drift_percents, const bool *unbounded)
{
	static Statement snapshot = {
		.sql =
			"INSERT INTO checkout.price_snapshots (lock_id, line_id, sku, "
			"  quantity, cart_price, locked_price, drift_percent) "
			"SELECT $1, t.line_id, t.sku, t.q, t.cart_price, t.price, t.drift "
			"FROM ROWS FROM (pg_catalog.unnest($2::text[]), "
			"  pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::int8[]), "
			"  pg_catalog.unnest($5::int8[]), pg_catalog.unnest($6::int8[]), "
			"  pg_catalog.unnest($7::numeric[])) AS t(line_id, sku, q, "
			"  cart_price, price, drift)",
		.nargs = 7,
		.argtypes = {INT8OID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID,
					 INT8ARRAYOID, INT8ARRAYOID, NUMERICARRAYOID},
		.generic = true,
	};
	static const int columns[7] = {PS_LOCK_ID,		PS_LINE_ID,
								   PS_SKU,			PS_QUANTITY,
								   PS_CART_PRICE,	PS_LOCKED_PRICE,
								   PS_DRIFT_PERCENT};
	RowWrite		 w;
	Datum			 values[7];
	int				 i;

	if (row_write_begin(&w, DT_PRICE_SNAPSHOTS, ACL_INSERT))
	{
		for (i = 0; i < n; i++)
		{
			bool isnull[7] = {false, false, false, false, false, false, false};

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
		int dims[1] = {n};
		int lbs[1] = {1};

		values[0] = Int64GetDatum(lock_id);
		values[1] = text_array(line_ids, n);
		values[2] = text_array(skus, n);
		values[3] = int8_array(quantities, n);
		values[4] = int8_array(cart_prices, n);
		values[5] = int8_array(locked_prices, n);
		values[6] = PointerGetDatum(
			construct_md_array((Datum *) drift_percents, (bool *) unbounded, 1,
							   dims, lbs, NUMERICOID, -1, false,
							   TYPALIGN_INT));
		stmt_exec(&snapshot, values, NULL, false);
	}
}

/*
 * Takes back the lock's price snapshots (a late reservation that decides
 * again).
 */
void
store_snapshots_delete(int64 lock_id)
{
	static Statement forget = {
		.sql = "DELETE FROM checkout.price_snapshots WHERE lock_id = $1",
		.nargs = 1,
		.argtypes = {INT8OID},
		.generic = true,
	};
	Datum values[1] = {Int64GetDatum(lock_id)};

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
store_order_insert(int64 lock_id, const char *cart_id, int64 total,
				   const char *order_ref, bool own)
{
	static Statement insert = {
		.sql = "INSERT INTO checkout.orders (order_ref, lock_id, cart_id, "
			   "  total, source) "
			   "VALUES ($2, $1, $3, $4, $5) "
			   "ON CONFLICT (order_ref) DO NOTHING "
			   "RETURNING order_ref",
		.nargs = 5,
		.argtypes = {INT8OID, TEXTOID, TEXTOID, INT8OID, TEXTOID},
		.generic = true,
	};
	static const int columns[5] = {OR_ORDER_REF, OR_LOCK_ID, OR_CART_ID,
								   OR_TOTAL, OR_SOURCE};
	const char		*source = own ? "application" : "checkout";
	Datum			 values[5];
	bool			 isnull[5] = {false, false, false, false, false};
	KeyScan			 ks;
	RowWrite		 w;

	if (!own && key_open(&ks, DT_ORDERS, ACL_SELECT, true))
	{
		bool taken = key_find(&ks, CStringGetTextDatum(order_ref));

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

/*
 * Cancels the locks' live orders; returns how many, with their lock ids and
 * refs.
 */
int
store_orders_cancel(const int64 *lock_ids, int n, int64 **cancelled_ids,
					char ***order_refs)
{
	static Statement cancel = {
		.sql = "UPDATE checkout.orders o "
			   "SET status = 'cancelled', cancelled_at = pg_catalog.now() "
			   "WHERE o.lock_id = ANY ($1) AND o.status = 'created' "
			   "RETURNING o.lock_id, o.order_ref",
		.nargs = 1,
		.argtypes = {INT8ARRAYOID},
		.columns = {"lock_id", "order_ref"},
	};
	Datum		   values[1] = {int8_array(lock_ids, n)};
	SPITupleTable *tt;
	int			   rows = stmt_exec(&cancel, values, NULL, false);
	int			   i;

	tt = SPI_tuptable;
	*cancelled_ids = palloc(sizeof(int64) * Max(rows, 1));
	*order_refs = palloc(sizeof(char *) * Max(rows, 1));
	for (i = 0; i < rows; i++)
	{
		(*cancelled_ids)[i] = stmt_int8(&cancel, tt, i, 0);
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
store_compensations_insert(const int64 *lock_ids, const char *kind,
						   char *const *references, const int64 *amounts,
						   int n, int64 **compensation_ids,
						   int64 **for_lock_ids)
{
	static Statement insert = {
		.sql = "INSERT INTO checkout.compensations (lock_id, kind, reference, "
			   "  amount) "
			   "SELECT t.lock_id, $2, t.reference, t.amount "
			   "FROM ROWS FROM (pg_catalog.unnest($1::int8[]), "
			   "  pg_catalog.unnest($3::text[]), "
			   "  pg_catalog.unnest($4::int8[])) AS t(lock_id, reference, "
			   "  amount) "
			   "RETURNING compensation_id, lock_id",
		.nargs = 4,
		.argtypes = {INT8ARRAYOID, TEXTOID, TEXTARRAYOID, INT8ARRAYOID},
		.generic = true,
		.columns = {"compensation_id", "lock_id"},
	};
	Datum		   values[4];
	SPITupleTable *tt;
	int			   rows;
	int			   i;

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
store_payment_metadata_insert(int64 lock_id, CheckoutPhase phase,
							  const char *metadata)
{
	static Statement insert = {
		.sql =
			"INSERT INTO checkout.payment_metadata (lock_id, phase, metadata) "
			"VALUES ($1, $2::checkout.phase, $3::pg_catalog.jsonb)",
		.nargs = 3,
		.argtypes = {INT8OID, TEXTOID, TEXTOID},
		.generic = true,
	};
	Datum values[3];

	values[0] = Int64GetDatum(lock_id);
	values[1] = CStringGetTextDatum(phase_name(phase));
	values[2] = CStringGetTextDatum(metadata);
	stmt_exec(&insert, values, NULL, false);
}

/* ---- checkout.table_access() ---- */

/*
 * For each table the direct path serves: whether it serves it now, and why
 * not.
 */
Datum
checkout_table_access(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			   t;

	InitMaterializedSRF(fcinfo, 0);
	for (t = 0; t < DT_COUNT; t++)
	{
		Datum values[3];
		bool  nulls[3] = {false, false, false};
		char *why_not;

		if (!direct_table_exists((DirectTable) t))
			continue; /* a table of a later version */
		values[0] = CStringGetTextDatum(direct_table_name((DirectTable) t));
		values[1] = BoolGetDatum(direct_usable((DirectTable) t, &why_not));
		if (why_not)
			values[2] = CStringGetTextDatum(why_not);
		else
			nulls[2] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values,
							 nulls);
	}
	return (Datum) 0;
}
