/*
 * rowwrite.h — one row of the extension's tables written without a planned
 * statement (rowwrite.c).
 */
#ifndef CHECKOUT_ROWWRITE_H
#define CHECKOUT_ROWWRITE_H

#include "executor/execdesc.h"
#include "nodes/execnodes.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"

typedef struct RowWrite
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	EPQState	epq;
	TupleTableSlot *old;		/* the version written over */
	TupleTableSlot *new;		/* the version written */
	struct PreparedChecks *checks;	/* the table's CHECK constraints, or NULL */
	ExprState **defaults;		/* row_insert's column defaults, by attnum - 1 */
	bool	   *default_known;	/* whether defaults[i] was looked up */
} RowWrite;

extern bool row_write_begin(RowWrite *w, const char *table);
extern void row_update(RowWrite *w, ItemPointer tid, const int *attnums, const Datum *values,
					   const bool *isnull, int n);
extern void row_add(RowWrite *w, ItemPointer tid, const int *attnums, const int64 *deltas, int n);
extern int	row_attnum(RowWrite *w, const char *column);
extern void row_insert(RowWrite *w, const int *attnums, const Datum *values, const bool *isnull,
					   int n);
extern void row_delete(RowWrite *w, ItemPointer tid);
extern void row_write_end(RowWrite *w);

#endif							/* CHECKOUT_ROWWRITE_H */
