/*
 * rowwrite.c — one row of the extension's tables inserted, updated or
 * deleted without a planned statement, the way logical replication applies
 * a change (ExecSimpleRelationInsert/Update/Delete): CHECK constraints,
 * index entries (none when an update is HOT), foreign-key and other AFTER
 * ROW triggers are done as a statement does them, and the change is
 * WAL-logged and published like any other.  What it leaves out is the plan: no plan cache lookup, no
 * executor start of a plan tree, no projection.
 *
 * An executor prepares a table's CHECK constraints again for every statement
 * (parsed, planned, compiled: most of what writing one row costs); here they
 * are prepared once per backend and table, and prepared again after the
 * table's definition changes (a relcache invalidation).
 *
 * Statement-level triggers, rules and row security policies would not apply
 * here, so a table with code a user added to it (a trigger of their own, a
 * rule) or with row security enabled is written with SQL instead:
 * row_write_begin returns false.
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "rowwrite.h"
#include "util.h"

typedef struct PreparedChecks
{
	Oid			relid;			/* InvalidOid: a free entry */
	bool		stale;			/* the table's definition changed since */
	int			users;			/* RowWrites evaluating them now */
	MemoryContext cxt;
	ExprState **exprs;			/* one per TupleConstr.check[i], in its order */
} PreparedChecks;

#define PREPARED_CHECKS 8
static PreparedChecks prepared_checks[PREPARED_CHECKS];

static void
checks_invalidate(Datum arg, Oid relid)
{
	int			i;

	for (i = 0; i < PREPARED_CHECKS; i++)
		if (relid == InvalidOid || prepared_checks[i].relid == relid)
			prepared_checks[i].stale = true;
}

/* No RowWrite outlives its transaction (nor an error in it). */
static void
checks_xact_end(XactEvent event, void *arg)
{
	int			i;

	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		for (i = 0; i < PREPARED_CHECKS; i++)
			prepared_checks[i].users = 0;
}

/*
 * The table's CHECK constraints as ExecRelCheck would prepare them, kept
 * for the next write; NULL (ExecRelCheck prepares them) when every entry
 * is taken.  A stale entry nobody is evaluating is dropped first.
 */
static PreparedChecks *
prepared_checks_for(Relation rel)
{
	static bool registered = false;
	TupleConstr *constr = RelationGetDescr(rel)->constr;
	PreparedChecks *free_entry = NULL;
	MemoryContext old;
	int			i;

	if (constr == NULL || constr->num_check == 0)
		return NULL;
	if (!registered)
	{
		CacheRegisterRelcacheCallback(checks_invalidate, (Datum) 0);
		RegisterXactCallback(checks_xact_end, NULL);
		registered = true;
	}
	for (i = 0; i < PREPARED_CHECKS; i++)
	{
		PreparedChecks *p = &prepared_checks[i];

		if (p->relid != InvalidOid && p->stale && p->users == 0)
		{
			MemoryContextDelete(p->cxt);
			p->relid = InvalidOid;
		}
		/* one evaluation at a time: a nested write prepares its own */
		if (p->relid == RelationGetRelid(rel) && !p->stale)
			return p->users == 0 ? p : NULL;
		if (p->relid == InvalidOid && free_entry == NULL)
			free_entry = p;
	}
	if (free_entry == NULL)
		return NULL;

	free_entry->cxt = AllocSetContextCreate(TopMemoryContext, "checkout CHECK constraints",
											ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(free_entry->cxt);
	free_entry->exprs = palloc(sizeof(ExprState *) * constr->num_check);
	for (i = 0; i < constr->num_check; i++)
		free_entry->exprs[i] =
			ExecInitExpr(expression_planner((Expr *) stringToNode(constr->check[i].ccbin)), NULL);
	MemoryContextSwitchTo(old);
	free_entry->relid = RelationGetRelid(rel);
	free_entry->stale = false;
	free_entry->users = 0;
	return free_entry;
}

bool
row_write_begin(RowWrite *w, const char *table)
{
	RangeTblEntry *rte;

	w->rel = checkout_table_open(table, RowExclusiveLock);
	/* row security's policies, like rules, apply to statements only */
	if (relation_runs_user_code(w->rel) || w->rel->rd_rel->relrowsecurity)
	{
		table_close(w->rel, NoLock);
		return false;
	}

	/* what the row write sees and is seen by: a command of its own */
	CommandCounterIncrement();
	w->estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(w->rel);
	rte->relkind = w->rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	ExecInitRangeTable(w->estate, list_make1(rte));
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, 1, NULL, 0);
	w->defaults = NULL;
	w->default_known = NULL;
	w->checks = prepared_checks_for(w->rel);
	if (w->checks)
	{
		w->checks->users++;
		w->rri->ri_ConstraintExprs = w->checks->exprs;
	}
	w->estate->es_output_cid = GetCurrentCommandId(true);
	w->estate->es_snapshot = GetActiveSnapshot();
	ExecOpenIndices(w->rri, false);
	EvalPlanQualInit(&w->epq, w->estate, NULL, NIL, -1);
	w->old = table_slot_create(w->rel, &w->estate->es_tupleTable);
	w->new = ExecInitExtraTupleSlot(w->estate, RelationGetDescr(w->rel), &TTSOpsVirtual);
	AfterTriggerBeginQuery();
	return true;
}

/* The version at tid, which this transaction holds locked, into w->old. */
static void
fetch_locked(RowWrite *w, ItemPointer tid)
{
	if (!table_tuple_fetch_row_version(w->rel, tid, SnapshotAny, w->old))
		elog(ERROR, "checkout: a row of checkout.%s vanished under its row lock",
			 RelationGetRelationName(w->rel));
	slot_getallattrs(w->old);
	ExecClearTuple(w->new);
	memcpy(w->new->tts_values, w->old->tts_values, sizeof(Datum) * w->old->tts_nvalid);
	memcpy(w->new->tts_isnull, w->old->tts_isnull, sizeof(bool) * w->old->tts_nvalid);
}

/* Writes w->new over w->old; the new version's tid goes back into tid. */
static void
write_over(RowWrite *w, ItemPointer tid)
{
	ExecStoreVirtualTuple(w->new);
	ExecSimpleRelationUpdate(w->rri, w->estate, &w->epq, w->old, w->new);
	*tid = w->new->tts_tid;
}

/*
 * Updates the version at tid (which this transaction holds locked, so it is
 * the row's latest): n columns (attnums) set anew, the others kept.
 */
void
row_update(RowWrite *w, ItemPointer tid, const int *attnums, const Datum *values,
		   const bool *isnull, int n)
{
	int			i;

	PreventCommandIfReadOnly("UPDATE");
	fetch_locked(w, tid);
	for (i = 0; i < n; i++)
	{
		w->new->tts_values[attnums[i] - 1] = values[i];
		w->new->tts_isnull[attnums[i] - 1] = isnull[i];
	}
	write_over(w, tid);
}

/*
 * Adds deltas to n bigint NOT NULL columns of the version at tid (held
 * locked), as SET c = c + delta does: out of range is 22003.
 */
void
row_add(RowWrite *w, ItemPointer tid, const int *attnums, const int64 *deltas, int n)
{
	int			i;

	PreventCommandIfReadOnly("UPDATE");
	fetch_locked(w, tid);
	for (i = 0; i < n; i++)
	{
		int64		sum;

		if (pg_add_s64_overflow(DatumGetInt64(w->new->tts_values[attnums[i] - 1]), deltas[i], &sum))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("bigint out of range")));
		w->new->tts_values[attnums[i] - 1] = Int64GetDatum(sum);
	}
	write_over(w, tid);
}

/* A column's number, by name. */
int
row_attnum(RowWrite *w, const char *column)
{
	return table_attnum(w->rel, column);
}

/*
 * Inserts a row: n columns (attnums) given, the others their defaults (or
 * NULL), as an INSERT naming those columns would.  A column's default is
 * prepared at the write's first row that needs it, not at every row.
 */
void
row_insert(RowWrite *w, const int *attnums, const Datum *values, const bool *isnull, int n)
{
	TupleDesc	desc = RelationGetDescr(w->rel);
	bool	   *given = palloc0(sizeof(bool) * desc->natts);
	int			i;

	PreventCommandIfReadOnly("INSERT");
	if (w->defaults == NULL)
	{
		w->defaults = palloc0(sizeof(ExprState *) * desc->natts);
		w->default_known = palloc0(sizeof(bool) * desc->natts);
	}
	ExecClearTuple(w->new);
	for (i = 0; i < n; i++)
	{
		w->new->tts_values[attnums[i] - 1] = values[i];
		w->new->tts_isnull[attnums[i] - 1] = isnull[i];
		given[attnums[i] - 1] = true;
	}
	for (i = 0; i < desc->natts; i++)
	{
		if (given[i])
			continue;
		if (!w->default_known[i])
		{
			Node	   *def = TupleDescAttr(desc, i)->attisdropped ? NULL
				: build_column_default(w->rel, i + 1);

			if (def != NULL)
				w->defaults[i] = ExecPrepareExpr((Expr *) def, w->estate);
			w->default_known[i] = true;
		}
		w->new->tts_isnull[i] = true;
		if (w->defaults[i] != NULL)
			w->new->tts_values[i] = ExecEvalExprSwitchContext(w->defaults[i],
															  GetPerTupleExprContext(w->estate),
															  &w->new->tts_isnull[i]);
	}
	ExecStoreVirtualTuple(w->new);
	ExecSimpleRelationInsert(w->rri, w->estate, w->new);
}

/* Deletes the version at tid, which this transaction holds locked. */
void
row_delete(RowWrite *w, ItemPointer tid)
{
	PreventCommandIfReadOnly("DELETE");
	fetch_locked(w, tid);
	ExecSimpleRelationDelete(w->rri, w->estate, &w->epq, w->old);
}

/* Fires the queued AFTER ROW triggers (foreign-key checks) and lets go. */
void
row_write_end(RowWrite *w)
{
	AfterTriggerEndQuery(w->estate);
	/* the relations the triggers opened: another RowWrite's, when nested */
	ExecCloseResultRelations(w->estate);
	ExecCloseIndices(w->rri);
	EvalPlanQualEnd(&w->epq);
	ExecResetTupleTable(w->estate->es_tupleTable, false);
	FreeExecutorState(w->estate);
	if (w->checks)
		w->checks->users--;
	table_close(w->rel, NoLock);
}
