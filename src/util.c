/*
 * util.c — argument checks, quoting of user text, time formatting and the
 * SPI statement layer.
 *
 * Every statement is prepared once per backend, kept (SPI_keepplan) and run
 * with parameters; callers hold a static Statement next to where it is used,
 * so a reader sees each statement's SQL in place.  Kept plans survive
 * DROP/CREATE EXTENSION: the plan cache re-analyses them when the tables they
 * name are invalidated.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/json.h"

#include "errors.h"
#include "settings.h"
#include "util.h"

/* ---- arguments ---- */

void
require_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s must not be NULL", name)));
}

/*
 * Rejects an over-long identifier before anything is stored or logged: a
 * megabyte session_id would otherwise be indexed, logged and echoed back.
 */
void
check_identifier(const char *what, int len)
{
	if (len > CHECKOUT_MAX_IDENTIFIER)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s is too long (%d bytes, the maximum is %d)",
							   what, len, CHECKOUT_MAX_IDENTIFIER)));
}

/* A non-NULL, non-empty text argument of at most max_bytes bytes. */
char *
require_text_arg(FunctionCallInfo fcinfo, int argno, const char *name,
				 int max_bytes)
{
	text *t;
	int	  len;

	require_arg(fcinfo, argno, name);
	t = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(t);
	if (len == 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s must not be empty", name)));
	if (len > max_bytes)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s is too long (%d bytes, the maximum is %d)",
							   name, len, max_bytes)));
	return text_to_cstring(t);
}

/* A positive interval argument in seconds, capped at checkout.max_ttl. */
double
interval_arg_seconds(FunctionCallInfo fcinfo, int argno, const char *name)
{
	Interval *iv = PG_GETARG_INTERVAL_P(argno);
	/* months count as 30 days, as in interval arithmetic */
	double	  secs = (double) iv->time / USECS_PER_SEC +
				  (double) iv->day * SECS_PER_DAY +
				  (double) iv->month * DAYS_PER_MONTH * SECS_PER_DAY;

	if (secs <= 0)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s must be a positive interval", name)));
	return Min(secs, (double) checkout_max_ttl_s);
}

/* ---- text for messages and events ---- */

/*
 * User text as it appears in error messages: double-quoted, with quotes,
 * backslashes and control characters escaped as in JSON, so no cart id can
 * start a line of its own in the server log.
 */
char *
quote_user_text(const char *value)
{
	StringInfoData buf;

	initStringInfo(&buf);
	escape_json(&buf, value);
	return buf.data;
}

/*
 * The session id proves ownership of a lock, so logs carry only the first
 * 16 hex digits of its SHA-256: enough to follow one session's locks.
 */
char *
session_fingerprint(const char *session_id)
{
	/*
	 * a connection mostly serves one session: digest it once (OpenSSL's setup
	 * is most of the cost)
	 */
	static char		   last_session[CHECKOUT_MAX_IDENTIFIER + 1];
	static char		   last_hex[17];
	uint8			   digest[PG_SHA256_DIGEST_LENGTH];
	char			   hex[17];
	pg_cryptohash_ctx *ctx;
	int				   i;

	if (last_hex[0] != '\0' && strcmp(last_session, session_id) == 0)
		return pstrdup(last_hex);
	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) session_id,
							 strlen(session_id)) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "checkout: could not compute a SHA-256 digest");
	pg_cryptohash_free(ctx);
	for (i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	if (strlen(session_id) <= CHECKOUT_MAX_IDENTIFIER)
	{
		strcpy(last_session, session_id);
		strcpy(last_hex, hex);
	}
	return pstrdup(hex);
}

/* ISO 8601 in UTC, microseconds, whatever the session's TimeZone. */
char *
timestamp_iso_utc(TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		 fsec;

	if (TIMESTAMP_NOT_FINITE(t) ||
		timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		return pstrdup(TIMESTAMP_IS_NOBEGIN(t) ? "-infinity" : "infinity");
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year,
					tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
					(int) fsec);
}

/* Seconds between two times with millisecond precision, e.g. "12.345". */
char *
duration_seconds_text(TimestampTz from, TimestampTz to)
{
	int64 ms = (to - from) / 1000;

	return psprintf("%s" INT64_FORMAT ".%03d", ms < 0 ? "-" : "",
					(ms < 0 ? -ms : ms) / 1000,
					(int) ((ms < 0 ? -ms : ms) % 1000));
}

/* ---- SPI statements ---- */

/*
 * Statements run with search_path set to pg_catalog, pg_temp, as a SET
 * clause on the function would set it: they name every table with its
 * schema, and their operators and functions must come from pg_catalog
 * whatever the caller's search_path.  It is a setting like any other, so a
 * user's trigger function with a SET search_path of its own sees its own
 * path, and the plan cache sees the same path on every call and never
 * re-plans for it.
 *
 * The setting is made at the first statement of an API call, not at its
 * start: a call that reads and writes its rows directly (store.c) runs no
 * statement and pays nothing for it.  The outermost call that made it
 * restores it when it finishes; the end of the (sub)transaction it was made
 * in, by an error or not, undoes it, which the callbacks below notice.
 */
static int pinned_level = 0; /* the setting's GUC nest level, 0: not made */
static SubTransactionId pinned_in;

static void
pin_search_path(void)
{
	pinned_level = NewGUCNestLevel();
	pinned_in = GetCurrentSubTransactionId();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

static void
pin_xact_end(XactEvent event, void *arg)
{
	pinned_level = 0;
}

/*
 * A subtransaction's end undoes a setting made in it (GUC_ACTION_SAVE), be
 * it committed or rolled back: the next statement makes it again.
 */
static void
pin_subxact_end(SubXactEvent event, SubTransactionId mySubid,
				SubTransactionId parentSubid, void *arg)
{
	if ((event == SUBXACT_EVENT_ABORT_SUB ||
		 event == SUBXACT_EVENT_COMMIT_SUB) &&
		pinned_level != 0 && pinned_in == mySubid)
		pinned_level = 0;
}

/*
 * Connects to SPI for an API call; returns what checkout_spi_finish needs
 * to know: whether the search_path setting was made before this call.
 */
int
checkout_spi_connect(void)
{
	static bool registered = false;

	if (!registered)
	{
		RegisterXactCallback(pin_xact_end, NULL);
		RegisterSubXactCallback(pin_subxact_end, NULL);
		registered = true;
	}
	SPI_connect();
	return pinned_level;
}

void
checkout_spi_finish(int pinned_before)
{
	if (pinned_level != 0 && pinned_before == 0)
	{
		AtEOXact_GUC(true, pinned_level);
		pinned_level = 0;
	}
	SPI_finish();
}

static void
stmt_prepare(Statement *st)
{
	SPIPlanPtr plan = SPI_prepare_cursor(st->sql, st->nargs, st->argtypes,
										 st->generic ? CURSOR_OPT_GENERIC_PLAN
													 : 0);

	if (plan == NULL)
		elog(ERROR, "checkout: SPI_prepare failed (%s) for: %s",
			 SPI_result_code_string(SPI_result), st->sql);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "checkout: SPI_keepplan failed");
	st->plan = plan;
}

static void
stmt_resolve_columns(Statement *st, TupleDesc desc)
{
	int i;

	for (i = 0; st->columns[i] != NULL; i++)
	{
		st->colno[i] = SPI_fnumber(desc, st->columns[i]);
		if (st->colno[i] <= 0)
			elog(ERROR, "checkout: statement has no output column \"%s\": %s",
				 st->columns[i], st->sql);
	}
}

/* Runs the statement; returns SPI_processed.  Column names resolve once. */
int
stmt_exec(Statement *st, Datum *values, const char *nulls, bool read_only)
{
	int rc;

	if (pinned_level == 0 && !st->qualified)
		pin_search_path();
	if (st->plan == NULL)
		stmt_prepare(st);
	rc = SPI_execute_plan(st->plan, values, nulls, read_only, 0);
	if (rc < 0)
		elog(ERROR, "checkout: SPI_execute_plan failed (%s) for: %s",
			 SPI_result_code_string(rc), st->sql);
	if (SPI_tuptable != NULL && st->columns[0] != NULL && st->colno[0] == 0)
		stmt_resolve_columns(st, SPI_tuptable->tupdesc);
	return (int) SPI_processed;
}

Datum
stmt_datum(Statement *st, SPITupleTable *tt, int row, int col, bool *isnull)
{
	return SPI_getbinval(tt->vals[row], tt->tupdesc, st->colno[col], isnull);
}

bool
stmt_isnull(Statement *st, SPITupleTable *tt, int row, int col)
{
	bool isnull;

	(void) stmt_datum(st, tt, row, col, &isnull);
	return isnull;
}

char *
stmt_text(Statement *st, SPITupleTable *tt, int row, int col)
{
	return SPI_getvalue(tt->vals[row], tt->tupdesc, st->colno[col]);
}

int64
stmt_int8(Statement *st, SPITupleTable *tt, int row, int col)
{
	bool  isnull;
	Datum d = stmt_datum(st, tt, row, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

int32
stmt_int4(Statement *st, SPITupleTable *tt, int row, int col)
{
	bool  isnull;
	Datum d = stmt_datum(st, tt, row, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

TimestampTz
stmt_timestamptz(Statement *st, SPITupleTable *tt, int row, int col)
{
	bool  isnull;
	Datum d = stmt_datum(st, tt, row, col, &isnull);

	return isnull ? 0 : DatumGetTimestampTz(d);
}

Datum
int8_array(const int64 *values, int n)
{
	Datum *elems = palloc(sizeof(Datum) * Max(n, 1));
	int	   i;

	for (i = 0; i < n; i++)
		elems[i] = Int64GetDatum(values[i]);
	return PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

Datum
int4_array(const int32 *values, int n)
{
	Datum *elems = palloc(sizeof(Datum) * Max(n, 1));
	int	   i;

	for (i = 0; i < n; i++)
		elems[i] = Int32GetDatum(values[i]);
	return PointerGetDatum(
		construct_array(elems, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
}

Datum
text_array(char *const *values, int n)
{
	Datum *elems = palloc(sizeof(Datum) * Max(n, 1));
	int	   i;

	for (i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(values[i]);
	return PointerGetDatum(
		construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

int64 *
lock_ids_of(LockRow *const *locks, int n)
{
	int64 *ids = palloc(sizeof(int64) * Max(n, 1));
	int	   i;

	for (i = 0; i < n; i++)
		ids[i] = locks[i]->lock_id;
	return ids;
}

static int
cmp_lock_ptr(const void *a, const void *b)
{
	int64 x = (*(LockRow *const *) a)->lock_id;
	int64 y = (*(LockRow *const *) b)->lock_id;

	return (x > y) - (x < y);
}

/* A copy of the set sorted by lock_id, for locks_find(). */
LockRow **
locks_sorted_by_id(LockRow *const *locks, int n)
{
	LockRow **sorted = palloc(sizeof(LockRow *) * Max(n, 1));

	memcpy(sorted, locks, sizeof(LockRow *) * n);
	qsort(sorted, n, sizeof(LockRow *), cmp_lock_ptr);
	return sorted;
}

/* The lock of a set returned by a set-based statement; NULL if not there. */
LockRow *
locks_find(LockRow **sorted, int n, int64 lock_id)
{
	LockRow	  key = {.lock_id = lock_id};
	LockRow	 *keyp = &key;
	LockRow **found = bsearch(&keyp, sorted, n, sizeof(LockRow *),
							  cmp_lock_ptr);

	return found ? *found : NULL;
}
