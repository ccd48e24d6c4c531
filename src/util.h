/*
 * util.h — small helpers every module may use: argument checks, quoting user
 * text for messages, time formatting, prepared SPI statements whose output
 * columns are read by name, and rows read and locked by key without the
 * executor.
 */
#ifndef CHECKOUT_UTIL_H
#define CHECKOUT_UTIL_H

#include "checkout.h"

#include "access/skey.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "nodes/lockoptions.h"
#include "utils/relcache.h"
#include "fmgr.h"
#include "lib/stringinfo.h"

/* ---- arguments ---- */
extern void require_arg(FunctionCallInfo fcinfo, int argno, const char *name);
extern char *require_text_arg(FunctionCallInfo fcinfo, int argno, const char *name, int max_bytes);
extern void check_identifier(const char *what, int len);
extern double interval_arg_seconds(FunctionCallInfo fcinfo, int argno, const char *name);

/* ---- text for messages and events ---- */
extern char *quote_user_text(const char *value);
extern char *session_fingerprint(const char *session_id);
extern char *timestamp_iso_utc(TimestampTz t);
extern char *duration_seconds_text(TimestampTz from, TimestampTz to);

/* ---- SPI statements ---- */

extern void checkout_spi_connect(void);
extern void checkout_spi_finish(void);

/*
 * A statement prepared once per backend and kept.  Output columns the caller
 * reads are named in `columns`; their positions are looked up once, so a
 * reordered RETURNING list cannot silently shift what a caller reads.
 * `generic` asks for a generic plan (scalar key lookups, where re-planning
 * per call would only cost time).
 */
typedef struct Statement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[16];
	bool		generic;
	const char *columns[24];	/* NULL-terminated */
	/* resolved at first execution */
	SPIPlanPtr	plan;
	int			colno[24];
} Statement;

extern int	stmt_exec(Statement *st, Datum *values, const char *nulls, bool read_only);
extern bool stmt_isnull(Statement *st, SPITupleTable *tt, int row, int col);
extern Datum stmt_datum(Statement *st, SPITupleTable *tt, int row, int col, bool *isnull);
extern char *stmt_text(Statement *st, SPITupleTable *tt, int row, int col);	/* NULL for SQL NULL */
extern int64 stmt_int8(Statement *st, SPITupleTable *tt, int row, int col);	/* 0 for SQL NULL */
extern bool stmt_bool(Statement *st, SPITupleTable *tt, int row, int col);	/* false for NULL */
extern TimestampTz stmt_timestamptz(Statement *st, SPITupleTable *tt, int row, int col);

/* ---- reading and locking rows by key, without the executor ---- */

/*
 * A statement's worth of row access done in C: for the reads a call makes
 * most (the lock's row, FOR UPDATE) the planner and executor are most of the
 * cost.  key_open makes the statement's snapshot as SPI would (after
 * CommandCounterIncrement, a new one per statement in READ COMMITTED);
 * key_lock locks the latest version of a row found under it, as SELECT ...
 * FOR UPDATE does.  key_open_read reads under the calling query's snapshot
 * and locks nothing.
 */
typedef struct KeyAccess
{
	Relation	rel;
	HeapTuple	found;			/* the row key_find or key_next found (a copy) */
	TupleTableSlot *slot;		/* the version key_lock locked */
	ScanKeyData key;
	struct SysScanDescData *scan;
	bool		own_snapshot;	/* key_open pushed one (key_close pops it) */
} KeyAccess;

extern Relation checkout_table_open(const char *table, LOCKMODE lockmode);
extern bool relation_runs_user_code(Relation rel);
extern bool table_runs_user_code(const char *table);
extern int	table_attnum(Relation rel, const char *column);
extern void key_open(KeyAccess *ka, const char *table, LOCKMODE lockmode);
extern void key_open_read(KeyAccess *ka, const char *table);
extern void key_close(KeyAccess *ka);
extern int	key_attnum(KeyAccess *ka, const char *column);
extern Datum *key_deform(KeyAccess *ka, HeapTuple tuple);
extern bool key_find(KeyAccess *ka, int attnum, RegProcedure eqproc, Datum value);
extern void key_scan(KeyAccess *ka, int attnum, RegProcedure eqproc, Datum value);
extern bool key_next(KeyAccess *ka);
extern void key_scan_end(KeyAccess *ka);
extern bool key_lock(KeyAccess *ka, LockTupleMode mode);

extern Datum int8_array(const int64 *values, int n);
extern Datum lock_id_array(LockRow *const *locks, int n);
extern LockRow **locks_sorted_by_id(LockRow *const *locks, int n);
extern LockRow *locks_find(LockRow **sorted, int n, int64 lock_id);
extern Datum text_array(char *const *values, int n);

#endif							/* CHECKOUT_UTIL_H */
