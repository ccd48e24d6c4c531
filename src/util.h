/*
 * util.h — small helpers every module may use: argument checks, quoting user
 * text for messages, time formatting, and prepared SPI statements whose
 * output columns are read by name.
 */
#ifndef CHECKOUT_UTIL_H
#define CHECKOUT_UTIL_H

#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"

#include "model.h"

/* ---- arguments ---- */
extern void	 require_arg(FunctionCallInfo fcinfo, int argno, const char *name);
extern char *require_text_arg(FunctionCallInfo fcinfo, int argno,
							  const char *name, int max_bytes);
extern void	 check_identifier(const char *what, int len);
extern double interval_arg_seconds(FunctionCallInfo fcinfo, int argno,
								   const char *name);

/* ---- text for messages and events ---- */
extern char *quote_user_text(const char *value);
extern char *session_fingerprint(const char *session_id);
extern char *timestamp_iso_utc(TimestampTz t);
extern char *duration_seconds_text(TimestampTz from, TimestampTz to);

/* ---- SPI statements ---- */

extern int	checkout_spi_connect(void);
extern void checkout_spi_finish(int spi_state);

/*
 * A statement prepared once per backend and kept.  Output columns the caller
 * reads are named in `columns`; their positions are looked up once, so a
 * reordered RETURNING list cannot silently shift what a caller reads.
 * `generic` asks for a generic plan (scalar key lookups, where re-planning
 * per call would only cost time).  `qualified` says that every name in the
 * statement is schema-qualified, operators included, so that it means the
 * same under any search_path: it runs without the pinned one.
 */
typedef struct Statement
{
	const char *sql;
	int			nargs;
	Oid			argtypes[16];
	bool		generic;
	bool		qualified;
	const char *columns[24]; /* NULL-terminated */
	/* resolved at first execution */
	SPIPlanPtr	plan;
	int			colno[24];
} Statement;

extern int	 stmt_exec(Statement *st, Datum *values, const char *nulls,
					   bool read_only);
extern bool	 stmt_isnull(Statement *st, SPITupleTable *tt, int row, int col);
extern Datum stmt_datum(Statement *st, SPITupleTable *tt, int row, int col,
						bool *isnull);
extern char *stmt_text(Statement *st, SPITupleTable *tt, int row,
					   int col); /* NULL for SQL NULL */
extern int64 stmt_int8(Statement *st, SPITupleTable *tt, int row,
					   int col); /* 0 for SQL NULL */
extern int32 stmt_int4(Statement *st, SPITupleTable *tt, int row,
					   int col); /* 0 for SQL NULL */
extern TimestampTz stmt_timestamptz(Statement *st, SPITupleTable *tt, int row,
									int col);

extern Datum	 int8_array(const int64 *values, int n);
extern Datum	 int4_array(const int32 *values, int n);
extern int64	*lock_ids_of(LockRow *const *locks, int n);
extern LockRow **locks_sorted_by_id(LockRow *const *locks, int n);
extern LockRow	*locks_find(LockRow **sorted, int n, int64 lock_id);
extern Datum	 text_array(char *const *values, int n);

#endif /* CHECKOUT_UTIL_H */
