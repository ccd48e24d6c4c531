/*
 * direct.h — rows of the extension's tables read, row-locked and written
 * without planned statements (direct.c).  Only store.c includes this
 * header: the rest of the extension asks store.c, which decides per table
 * and call whether this path may run, and goes through SQL where not.
 */
#ifndef CHECKOUT_DIRECT_H
#define CHECKOUT_DIRECT_H

#include "access/attnum.h"
#include "access/skey.h"
#include "executor/execdesc.h"
#include "nodes/execnodes.h"
#include "nodes/lockoptions.h"
#include "storage/itemptr.h"
#include "utils/acl.h"
#include "utils/relcache.h"

/* The tables the direct path serves. */
typedef enum DirectTable
{
	DT_INVENTORY,
	DT_LOCKS,
	DT_LOCK_LINES,
	DT_RESERVATIONS,
	DT_PRICE_SNAPSHOTS,
	DT_ORDERS,
	DT_STRIPES,
	DT_COUNT
} DirectTable;

/*
 * Each table's columns, as the extension created them (direct.c has the
 * types): a caller names a column by these, never by its attnum.
 */
enum
{
	INV_SKU,
	INV_ON_HAND,
	INV_RESERVED,
	INV_UNIT_PRICE,
	INV_NCOLUMNS
};
enum
{
	LK_LOCK_ID,
	LK_CART_ID,
	LK_SESSION_ID,
	LK_STATE,
	LK_PHASE,
	LK_EXCLUSIVE,
	LK_IDEMPOTENCY_KEY,
	LK_GATEWAY,
	LK_CREATED_AT,
	LK_EXPIRES_AT,
	LK_FINISHED_AT,
	LK_TOTAL,
	LK_ORDER_REF,
	LK_AUTH_REFERENCE,
	LK_AUTH_AMOUNT,
	LK_CAPTURE_REFERENCE,
	LK_CAPTURE_AMOUNT,
	LK_FAILED_PHASE,
	LK_ERROR_CODE,
	LK_ERROR_MESSAGE,
	LK_NCOLUMNS
};
enum
{
	LL_LOCK_ID,
	LL_LINE_NO,
	LL_LINE_ID,
	LL_SKU,
	LL_QUANTITY,
	LL_CART_PRICE,
	LL_NCOLUMNS
};
enum
{
	RS_LOCK_ID,
	RS_SKU,
	RS_QUANTITY,
	RS_RESERVED_AT,
	RS_STRIPE,
	RS_NCOLUMNS
};
enum
{
	PS_LOCK_ID,
	PS_LINE_ID,
	PS_SKU,
	PS_QUANTITY,
	PS_CART_PRICE,
	PS_LOCKED_PRICE,
	PS_DRIFT_PERCENT,
	PS_TAKEN_AT,
	PS_NCOLUMNS
};
enum
{
	OR_ORDER_REF,
	OR_LOCK_ID,
	OR_CART_ID,
	OR_TOTAL,
	OR_SOURCE,
	OR_STATUS,
	OR_CREATED_AT,
	OR_CANCELLED_AT,
	OR_NCOLUMNS
};

enum
{
	ST_SKU,
	ST_STRIPE,
	ST_ON_HAND,
	ST_RESERVED,
	ST_NCOLUMNS
};

#define DIRECT_MAX_COLUMNS LK_NCOLUMNS
#define DIRECT_MAX_KEY	   3

extern bool		   direct_table_exists(DirectTable table);
extern Oid		   direct_table_relid(DirectTable table);
extern Oid		   direct_table_known_relid(DirectTable table);
/*
 * Whether the direct path may serve the table for every privilege it uses
 * on it, as the current user, and why not (a sentence) when it may not.
 * Reports only; opening decides again.
 */
extern bool		   direct_usable(DirectTable table, char **why_not);
extern bool		   direct_runs_user_code(DirectTable table);
extern int		   direct_stripes_in_use(void);
extern void		   direct_stripes_in_use_set(bool in_use);
extern const char *direct_table_name(DirectTable table);

/* ---- reading and row-locking rows by primary key ---- */

/*
 * A scan of a table's primary key for the rows whose first key column
 * equals a value.  statement: under a snapshot of its own taken after
 * CommandCounterIncrement, as SPI takes one per statement (a call that
 * writes); otherwise under the calling query's snapshot (a read-only call).
 */
typedef struct KeyScan
{
	DirectTable				  table;
	Relation				  rel;
	Relation				  index;
	struct IndexScanDescData *scan;
	TupleTableSlot			 *found; /* the row key_next found */
	TupleTableSlot *rowlocked;		 /* the version key_rowlock row-locked */
	ScanKeyData		keys[DIRECT_MAX_KEY];
	Oid				key_types[DIRECT_MAX_KEY];
	int				n_key;
	bool			own_snapshot;
} KeyScan;

extern bool		   key_open(KeyScan *ks, DirectTable table, AclMode need,
							bool statement);
extern bool		   key_open_by(KeyScan *ks, DirectTable table, AclMode need,
							   bool statement);
extern void		   key_close(KeyScan *ks);
extern void		   key_scan(KeyScan *ks, Datum value);
extern bool		   key_next(KeyScan *ks);
extern bool		   key_find(KeyScan *ks, Datum value);
extern bool		   key_find_prefix(KeyScan *ks, const Datum *values, int n);
extern bool		   key_rowlock(KeyScan *ks, LockTupleMode mode);
/* a column of ks->found or ks->rowlocked, by the table's column enum */
extern Datum	   slot_column(KeyScan *ks, TupleTableSlot *slot, int column,
							   bool *isnull);
extern ItemPointer slot_tid(TupleTableSlot *slot);

/* ---- writing rows ---- */

typedef struct RowWrite
{
	DirectTable		table;
	Relation		rel;
	EState		   *estate;
	ResultRelInfo  *rri;
	EPQState		epq;
	TupleTableSlot *old;		  /* the version written over */
	TupleTableSlot *new;		  /* the version written */
	struct PlannedExprs *planned; /* CHECK constraints, defaults: in use */
	ExprState **defaults; /* row_insert's column defaults, by attnum - 1 */
	struct ForeignKeyChecks *fk_checks; /* row_insert's, once decided */
} RowWrite;

extern bool	 row_write_begin(RowWrite *w, DirectTable table, AclMode need);
extern void	 row_insert(RowWrite *w, const int *columns, const Datum *values,
						const bool *isnull, int n);
extern void	 row_update(RowWrite *w, ItemPointer tid, const int *columns,
						const Datum *values, const bool *isnull, int n);
extern void	 row_add(RowWrite *w, ItemPointer tid, const int *columns,
					 const int64 *deltas, int n);
extern void	 row_delete(RowWrite *w, ItemPointer tid);
extern Datum row_inserted(RowWrite *w, int column, bool *isnull);
extern void	 row_write_end(RowWrite *w);
extern Oid	 row_column_type(RowWrite *w, int column);

#endif /* CHECKOUT_DIRECT_H */
