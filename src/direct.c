/*
 * direct.c — rows of the extension's tables read by primary key,
 * row-locked and written without planned statements, the way logical
 * replication applies a change (ExecSimpleRelationInsert/Update/Delete): index
 * entries, NOT NULL and CHECK constraints, foreign-key triggers and the WAL
 * are done as a statement does them.  What it leaves out is the plan: no plan
 * cache lookup, no executor start of a plan tree, no projection.
 *
 * That is only the same as SQL for a table whose definition is exactly the
 * one the extension created, so before it serves a table this file checks
 * (once per relcache invalidation of the table, never per call):
 *   - its columns: the extension's names, types (no domains), typmods,
 *     collations and NOT NULL flags, nothing generated, nothing added;
 *   - its constraints: the extension's, by name, kind and, for a CHECK, by
 *     expression; its primary key on the extension's columns with the
 *     default operator class, which the key reads rely on;
 *   - nothing a statement would apply and this path would not: no trigger
 *     of a user's, no rule, no row security or policy, no inheritance child,
 *     not a partition, the heap access method.
 * and per access, as the executor does per statement: the privilege the
 * access needs, held by the current user (the functions' owner) on the
 * table as a whole.  With checkout.direct_access off, or an executor
 * permission hook loaded (pgaudit, sepgsql: they must see every access), it
 * serves nothing.  Where it does not serve, store.c uses SQL.
 *
 * What is cached is keyed by the table's OID and dropped by a relcache
 * invalidation of that OID (a function's redefinition drops the planned
 * CHECK expressions too): the shape verdict, the columns' attnums, the
 * primary key, and each CHECK constraint planned once (parse and plan are
 * most of what ExecRelCheck costs per statement).  A row write builds its
 * ExprStates in its own EState, so none outlives it; the planned
 * expressions they point into are counted in use and outlive every write
 * that uses them, whatever an invalidation retires meanwhile.
 *
 * Key reads go through the primary key's index directly (index_beginscan),
 * so ignore_system_indexes, which any role may set at connection, does not
 * turn them into sequential scans.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/ruleutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "direct.h"
#include "settings.h"

/* ---- the extension's definition of each table ---- */

typedef struct ColumnShape
{
	const char *name;
	Oid			type;	   /* a built-in type, or */
	const char *enum_type; /* an enum of schema checkout */
	bool		not_null;
} ColumnShape;

typedef struct ConstraintShape
{
	const char *name;
	char		type;  /* pg_constraint.contype */
	const char *check; /* a CHECK's expression, deparsed */
} ConstraintShape;

typedef struct TableShape
{
	const char			  *name;
	const ColumnShape	  *columns;
	int					   n_columns;
	const ConstraintShape *constraints;
	int					   n_constraints;
	int					   key[DIRECT_MAX_KEY]; /* the primary key's columns */
	int					   n_key;
	AclMode				   uses; /* the privileges the direct path needs */
	const char *trigger; /* the extension's own trigger on it, or NULL */
	/*
	 * a second index the direct path scans (its first column is by_column), or
	 * NULL
	 */
	const char *index;
	const char *index_definition; /* as pg_get_indexdef_string gives it */
	int			by_column;
} TableShape;

static const ColumnShape inventory_columns[INV_NCOLUMNS] = {
	[INV_SKU] = {"sku", TEXTOID, NULL, true},
	[INV_ON_HAND] = {"on_hand", INT8OID, NULL, true},
	[INV_RESERVED] = {"reserved", INT8OID, NULL, true},
	[INV_UNIT_PRICE] = {"unit_price", INT8OID, NULL, true},
};
static const ConstraintShape inventory_constraints[] = {
	{"inventory_pkey", CONSTRAINT_PRIMARY, NULL},
	{"inventory_reserved_within_on_hand", CONSTRAINT_CHECK,
	 "((reserved >= (0)::bigint) AND (reserved <= on_hand))"},
	{"inventory_unit_price_not_negative", CONSTRAINT_CHECK,
	 "(unit_price >= (0)::bigint)"},
};

static const ColumnShape locks_columns[LK_NCOLUMNS] = {
	[LK_LOCK_ID] = {"lock_id", INT8OID, NULL, true},
	[LK_CART_ID] = {"cart_id", TEXTOID, NULL, true},
	[LK_SESSION_ID] = {"session_id", TEXTOID, NULL, true},
	[LK_STATE] = {"state", InvalidOid, "lock_state", true},
	[LK_PHASE] = {"phase", InvalidOid, "phase", false},
	[LK_EXCLUSIVE] = {"exclusive", BOOLOID, NULL, true},
	[LK_IDEMPOTENCY_KEY] = {"idempotency_key", TEXTOID, NULL, false},
	[LK_GATEWAY] = {"gateway", TEXTOID, NULL, false},
	[LK_CREATED_AT] = {"created_at", TIMESTAMPTZOID, NULL, true},
	[LK_EXPIRES_AT] = {"expires_at", TIMESTAMPTZOID, NULL, true},
	[LK_FINISHED_AT] = {"finished_at", TIMESTAMPTZOID, NULL, false},
	[LK_TOTAL] = {"total", INT8OID, NULL, false},
	[LK_ORDER_REF] = {"order_ref", TEXTOID, NULL, false},
	[LK_AUTH_REFERENCE] = {"auth_reference", TEXTOID, NULL, false},
	[LK_AUTH_AMOUNT] = {"auth_amount", INT8OID, NULL, false},
	[LK_CAPTURE_REFERENCE] = {"capture_reference", TEXTOID, NULL, false},
	[LK_CAPTURE_AMOUNT] = {"capture_amount", INT8OID, NULL, false},
	[LK_FAILED_PHASE] = {"failed_phase", InvalidOid, "phase", false},
	[LK_ERROR_CODE] = {"error_code", TEXTOID, NULL, false},
	[LK_ERROR_MESSAGE] = {"error_message", TEXTOID, NULL, false},
};
static const ConstraintShape locks_constraints[] = {
	{"locks_pkey", CONSTRAINT_PRIMARY, NULL},
	{"locks_expires_after_creation", CONSTRAINT_CHECK,
	 "(expires_at > created_at)"},
	{"locks_finished_when_terminal", CONSTRAINT_CHECK,
	 "((state = 'active'::checkout.lock_state) = (finished_at IS NULL))"},
};

static const ColumnShape lock_lines_columns[LL_NCOLUMNS] = {
	[LL_LOCK_ID] = {"lock_id", INT8OID, NULL, true},
	[LL_LINE_NO] = {"line_no", INT4OID, NULL, true},
	[LL_LINE_ID] = {"line_id", TEXTOID, NULL, true},
	[LL_SKU] = {"sku", TEXTOID, NULL, true},
	[LL_QUANTITY] = {"quantity", INT8OID, NULL, true},
	[LL_CART_PRICE] = {"cart_price", INT8OID, NULL, true},
};
static const ConstraintShape lock_lines_constraints[] = {
	{"lock_lines_pkey", CONSTRAINT_PRIMARY, NULL},
	{"lock_lines_lock_id_line_no_key", CONSTRAINT_UNIQUE, NULL},
	{"lock_lines_lock_id_fkey", CONSTRAINT_FOREIGN, NULL},
	{"lock_lines_quantity_check", CONSTRAINT_CHECK,
	 "(quantity >= (1)::bigint)"},
	{"lock_lines_cart_price_check", CONSTRAINT_CHECK,
	 "(cart_price >= (0)::bigint)"},
};

static const ColumnShape reservations_columns[RS_NCOLUMNS] = {
	[RS_LOCK_ID] = {"lock_id", INT8OID, NULL, true},
	[RS_SKU] = {"sku", TEXTOID, NULL, true},
	[RS_QUANTITY] = {"quantity", INT8OID, NULL, true},
	[RS_RESERVED_AT] = {"reserved_at", TIMESTAMPTZOID, NULL, true},
	[RS_STRIPE] = {"stripe", INT4OID, NULL, true},
};
static const ConstraintShape reservations_constraints[] = {
	{"reservations_pkey", CONSTRAINT_PRIMARY, NULL},
	{"reservations_lock_id_fkey", CONSTRAINT_FOREIGN, NULL},
	{"reservations_sku_fkey", CONSTRAINT_FOREIGN, NULL},
	{"reservations_quantity_check", CONSTRAINT_CHECK,
	 "(quantity > (0)::bigint)"},
	{"reservations_stripe_check", CONSTRAINT_CHECK, "(stripe >= 0)"},
};

static const ColumnShape stripes_columns[ST_NCOLUMNS] = {
	[ST_SKU] = {"sku", TEXTOID, NULL, true},
	[ST_STRIPE] = {"stripe", INT4OID, NULL, true},
	[ST_ON_HAND] = {"on_hand", INT8OID, NULL, true},
	[ST_RESERVED] = {"reserved", INT8OID, NULL, true},
};
static const ConstraintShape stripes_constraints[] = {
	{"inventory_stripes_pkey", CONSTRAINT_PRIMARY, NULL},
	{"inventory_stripes_sku_fkey", CONSTRAINT_FOREIGN, NULL},
	{"inventory_stripes_stripe_check", CONSTRAINT_CHECK, "(stripe >= 1)"},
	{"inventory_stripes_reserved_within_on_hand", CONSTRAINT_CHECK,
	 "((reserved >= (0)::bigint) AND (reserved <= on_hand))"},
};

static const ColumnShape price_snapshots_columns[PS_NCOLUMNS] = {
	[PS_LOCK_ID] = {"lock_id", INT8OID, NULL, true},
	[PS_LINE_ID] = {"line_id", TEXTOID, NULL, true},
	[PS_SKU] = {"sku", TEXTOID, NULL, true},
	[PS_QUANTITY] = {"quantity", INT8OID, NULL, true},
	[PS_CART_PRICE] = {"cart_price", INT8OID, NULL, true},
	[PS_LOCKED_PRICE] = {"locked_price", INT8OID, NULL, true},
	[PS_DRIFT_PERCENT] = {"drift_percent", NUMERICOID, NULL, false},
	[PS_TAKEN_AT] = {"taken_at", TIMESTAMPTZOID, NULL, true},
};
static const ConstraintShape price_snapshots_constraints[] = {
	{"price_snapshots_pkey", CONSTRAINT_PRIMARY, NULL},
	{"price_snapshots_lock_id_fkey", CONSTRAINT_FOREIGN, NULL},
};

static const ColumnShape orders_columns[OR_NCOLUMNS] = {
	[OR_ORDER_REF] = {"order_ref", TEXTOID, NULL, true},
	[OR_LOCK_ID] = {"lock_id", INT8OID, NULL, true},
	[OR_CART_ID] = {"cart_id", TEXTOID, NULL, true},
	[OR_TOTAL] = {"total", INT8OID, NULL, true},
	[OR_SOURCE] = {"source", TEXTOID, NULL, true},
	[OR_STATUS] = {"status", TEXTOID, NULL, true},
	[OR_CREATED_AT] = {"created_at", TIMESTAMPTZOID, NULL, true},
	[OR_CANCELLED_AT] = {"cancelled_at", TIMESTAMPTZOID, NULL, false},
};
static const ConstraintShape orders_constraints[] = {
	{"orders_pkey", CONSTRAINT_PRIMARY, NULL},
	{"orders_lock_id_key", CONSTRAINT_UNIQUE, NULL},
	{"orders_lock_id_fkey", CONSTRAINT_FOREIGN, NULL},
	{"orders_source_check", CONSTRAINT_CHECK,
	 "(source = ANY ('{checkout,application}'::text[]))"},
	{"orders_status_check", CONSTRAINT_CHECK,
	 "(status = ANY ('{created,cancelled}'::text[]))"},
};

static const TableShape table_shapes[DT_COUNT] = {
	[DT_INVENTORY] =
		{
			.name = "inventory",
			.columns = inventory_columns,
			.n_columns = INV_NCOLUMNS,
			.constraints = inventory_constraints,
			.n_constraints = lengthof(inventory_constraints),
			.key = {INV_SKU},
			.n_key = 1,
			.uses = ACL_SELECT | ACL_UPDATE,
			.trigger = "inventory_restock",
		},
	[DT_LOCKS] =
		{
			.name = "locks",
			.columns = locks_columns,
			.n_columns = LK_NCOLUMNS,
			.constraints = locks_constraints,
			.n_constraints = lengthof(locks_constraints),
			.key = {LK_LOCK_ID},
			.n_key = 1,
			.uses = ACL_SELECT | ACL_INSERT | ACL_UPDATE,
			.index = "locks_active_cart",
			.index_definition =
				"CREATE UNIQUE INDEX locks_active_cart ON checkout.locks "
				"USING btree (cart_id, "
				"(CASE WHEN exclusive THEN (0)::bigint ELSE lock_id END)) "
				"WHERE (state = 'active'::checkout.lock_state)",
			.by_column = LK_CART_ID,
		},
	[DT_LOCK_LINES] =
		{
			.name = "lock_lines",
			.columns = lock_lines_columns,
			.n_columns = LL_NCOLUMNS,
			.constraints = lock_lines_constraints,
			.n_constraints = lengthof(lock_lines_constraints),
			.key = {LL_LOCK_ID, LL_LINE_ID},
			.n_key = 2,
			.uses = ACL_SELECT | ACL_INSERT,
		},
	[DT_RESERVATIONS] =
		{
			.name = "reservations",
			.columns = reservations_columns,
			.n_columns = RS_NCOLUMNS,
			.constraints = reservations_constraints,
			.n_constraints = lengthof(reservations_constraints),
			.key = {RS_LOCK_ID, RS_SKU, RS_STRIPE},
			.n_key = 3,
			.uses = ACL_SELECT | ACL_INSERT | ACL_DELETE,
		},
	[DT_PRICE_SNAPSHOTS] =
		{
			.name = "price_snapshots",
			.columns = price_snapshots_columns,
			.n_columns = PS_NCOLUMNS,
			.constraints = price_snapshots_constraints,
			.n_constraints = lengthof(price_snapshots_constraints),
			.key = {PS_LOCK_ID, PS_LINE_ID},
			.n_key = 2,
			.uses = ACL_INSERT,
		},
	[DT_ORDERS] =
		{
			.name = "orders",
			.columns = orders_columns,
			.n_columns = OR_NCOLUMNS,
			.constraints = orders_constraints,
			.n_constraints = lengthof(orders_constraints),
			.key = {OR_ORDER_REF},
			.n_key = 1,
			.uses = ACL_SELECT | ACL_INSERT,
		},
	[DT_STRIPES] =
		{
			.name = "inventory_stripes",
			.columns = stripes_columns,
			.n_columns = ST_NCOLUMNS,
			.constraints = stripes_constraints,
			.n_constraints = lengthof(stripes_constraints),
			.key = {ST_SKU, ST_STRIPE},
			.n_key = 2,
			.uses = ACL_SELECT | ACL_UPDATE,
		},
};

const char *
direct_table_name(DirectTable table)
{
	return table_shapes[table].name;
}

/* ---- what is known of each table, dropped by invalidations ---- */

typedef struct TableState
{
	Oid		   relid;	  /* InvalidOid: look it up by name */
	bool	   known;	  /* shape checked since the last invalidation */
	char	  *differs;	  /* NULL: the extension's definition; else why not */
	bool	   user_code; /* a write runs a user's trigger or rule */
	AttrNumber attnums[DIRECT_MAX_COLUMNS];
	Oid		   pkey;
	Oid		   index;			  /* TableShape.index, checked */
	struct PlannedExprs *planned; /* NULL until planned */
} TableState;

/*
 * A table's expressions a row write evaluates, planned as a prepared INSERT
 * or UPDATE keeps them: its CHECK constraints (TupleConstr.check[i]'s in
 * checks[i]) and its columns' defaults (defaults[attnum - 1], NULL for none,
 * each planned at the first insert that leaves its column out, as an INSERT
 * plans only those: default_known[attnum - 1]).  The row writes evaluating
 * them count as users: an invalidation retires the set, and it is freed
 * once no write uses it (or at the end of the transaction, which ends every
 * write).
 */
typedef struct PlannedExprs
{
	MemoryContext		 cxt; /* holds this struct and the expressions */
	int					 n_checks;
	Expr			   **checks;
	Expr			   **defaults;
	bool				*default_known;
	int					 users;
	bool				 retired;
	struct PlannedExprs *next_retired;
} PlannedExprs;

static PlannedExprs *retired_planned = NULL;

static TableState tables[DT_COUNT];

/* whether checkout.inventory_stripes has a row: -1 unknown (store.c asks) */
static int stripes_in_use = -1;

int
direct_stripes_in_use(void)
{
	return stripes_in_use;
}

void
direct_stripes_in_use_set(bool in_use)
{
	stripes_in_use = in_use ? 1 : 0;
}

/*
 * The table's planned expressions are no longer its: freed now, or when
 * their last write ends.
 */
static void
forget_planned(TableState *ts)
{
	PlannedExprs *pe = ts->planned;

	ts->planned = NULL;
	if (pe == NULL)
		return;
	if (pe->users == 0)
		MemoryContextDelete(pe->cxt);
	else
	{
		pe->retired = true;
		pe->next_retired = retired_planned;
		retired_planned = pe;
	}
}

static void
release_planned(PlannedExprs *pe)
{
	PlannedExprs **link;

	if (--pe->users > 0 || !pe->retired)
		return;
	for (link = &retired_planned; *link != pe; link = &(*link)->next_retired)
		;
	*link = pe->next_retired;
	MemoryContextDelete(pe->cxt);
}

/*
 * A transaction's end ends every row write: no planned expressions are in
 * use.
 */
static void
planned_xact_end(XactEvent event, void *arg)
{
	int t;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT &&
		event != XACT_EVENT_PARALLEL_ABORT && event != XACT_EVENT_PREPARE)
		return;
	while (retired_planned != NULL)
	{
		PlannedExprs *pe = retired_planned;

		retired_planned = pe->next_retired;
		MemoryContextDelete(pe->cxt);
	}
	for (t = 0; t < DT_COUNT; t++)
		if (tables[t].planned)
			tables[t].planned->users = 0;
}

static void
forget_table(TableState *ts)
{
	ts->relid = InvalidOid;
	ts->known = false;
	if (ts->differs)
		pfree(ts->differs);
	ts->differs = NULL;
	forget_planned(ts);
}

static void
relcache_invalidated(Datum arg, Oid relid)
{
	int t;

	if (relid == InvalidOid || tables[DT_STRIPES].relid == relid)
		stripes_in_use = -1;
	for (t = 0; t < DT_COUNT; t++)
		if (relid == InvalidOid || tables[t].relid == relid)
			forget_table(&tables[t]);
}

/*
 * A function redefined: a CHECK or a default calling it must be planned
 * again.
 */
static void
function_invalidated(Datum arg, int cacheid, uint32 hashvalue)
{
	int t;

	for (t = 0; t < DT_COUNT; t++)
		forget_planned(&tables[t]);
}

static void
register_callbacks(void)
{
	static bool registered = false;

	if (registered)
		return;
	CacheRegisterRelcacheCallback(relcache_invalidated, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, function_invalidated, (Datum) 0);
	RegisterXactCallback(planned_xact_end, NULL);
	registered = true;
}

/* ---- the shape check ---- */

static Oid
column_type(const ColumnShape *col)
{
	Oid nsp;

	if (col->enum_type == NULL)
		return col->type;
	nsp = get_namespace_oid("checkout", false);
	return GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
						   CStringGetDatum(col->enum_type),
						   ObjectIdGetDatum(nsp));
}

/*
 * A CHECK constraint's expression as text, names resolved in pg_catalog only.
 */
static char *
check_text(Relation rel, const char *ccbin)
{
	int	  nest = NewGUCNestLevel();
	char *text;

	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	text = deparse_expression(stringToNode(ccbin),
							  deparse_context_for(RelationGetRelationName(rel),
												  RelationGetRelid(rel)),
							  false, false);
	AtEOXact_GUC(true, nest);
	return text;
}

static bool
has_policies(Oid relid)
{
	Relation	catalog = table_open(PolicyRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	bool		found;

	ScanKeyInit(&key, Anum_pg_policy_polrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(catalog, PolicyPolrelidPolnameIndexId, true,
							  NULL, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(catalog, AccessShareLock);
	return found;
}

static char *
columns_difference(const TableShape *def, Relation rel, AttrNumber *attnums)
{
	TupleDesc desc = RelationGetDescr(rel);
	int		  i;
	int		  c;

	for (c = 0; c < def->n_columns; c++)
		attnums[c] = InvalidAttrNumber;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute  att = TupleDescAttr(desc, i);
		const ColumnShape *col = NULL;
		Oid				   type;

		if (att->attisdropped)
			continue;
		for (c = 0; c < def->n_columns && col == NULL; c++)
			if (strcmp(NameStr(att->attname), def->columns[c].name) == 0)
				col = &def->columns[c];
		if (col == NULL)
			return psprintf("column %s is not the extension's",
							quote_identifier(NameStr(att->attname)));
		type = column_type(col);
		if (att->atttypid != type || att->atttypmod != -1)
			return psprintf("column %s has type %s, not %s",
							quote_identifier(col->name),
							format_type_with_typemod(att->atttypid,
													 att->atttypmod),
							format_type_be(type));
		if (att->attgenerated != '\0')
			return psprintf("column %s is generated",
							quote_identifier(col->name));
		if (att->attcollation !=
			(type_is_collatable(type) ? DEFAULT_COLLATION_OID : InvalidOid))
			return psprintf("column %s has another collation",
							quote_identifier(col->name));
		if (att->attnotnull != col->not_null)
			return psprintf("column %s is %s", quote_identifier(col->name),
							att->attnotnull ? "NOT NULL" : "nullable");
		attnums[col - def->columns] = att->attnum;
	}
	for (c = 0; c < def->n_columns; c++)
		if (attnums[c] == InvalidAttrNumber)
			return psprintf("column %s is missing",
							quote_identifier(def->columns[c].name));
	return NULL;
}

static char *
constraints_difference(const TableShape *def, Relation rel)
{
	Relation	catalog = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	int			matched = 0;
	char	   *differs = NULL;

	ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(RelationGetRelid(rel)));
	scan = systable_beginscan(catalog, ConstraintRelidTypidNameIndexId, true,
							  NULL, 1, &key);
	while (differs == NULL && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_constraint	   con = (Form_pg_constraint) GETSTRUCT(tuple);
		const ConstraintShape *expected = NULL;
		int					   i;

		for (i = 0; i < def->n_constraints && expected == NULL; i++)
			if (strcmp(NameStr(con->conname), def->constraints[i].name) == 0 &&
				con->contype == def->constraints[i].type)
				expected = &def->constraints[i];
		if (expected != NULL && expected->check != NULL)
		{
			bool  isnull;
			Datum bin = heap_getattr(tuple, Anum_pg_constraint_conbin,
									 RelationGetDescr(catalog), &isnull);

			if (isnull || !con->convalidated ||
				strcmp(check_text(rel, TextDatumGetCString(bin)),
					   expected->check) != 0)
				expected = NULL;
		}
		if (expected == NULL)
			differs = psprintf("constraint %s is not the extension's",
							   quote_identifier(NameStr(con->conname)));
		else
			matched++;
	}
	systable_endscan(scan);
	table_close(catalog, AccessShareLock);
	if (differs == NULL && matched != def->n_constraints)
		differs = pstrdup("a constraint of the extension's is missing");
	return differs;
}

/*
 * The primary key the key reads use: the extension's columns, default btree
 * operator classes.
 */
static char *
primary_key_difference(const TableShape *def, Relation rel,
					   const AttrNumber *attnums, Oid *pkey)
{
	Relation index;
	char	*differs = NULL;
	int		 k;

	*pkey = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(*pkey))
		return pstrdup("it has no primary key");
	index = index_open(*pkey, AccessShareLock);
	if (index->rd_rel->relam != BTREE_AM_OID ||
		index->rd_index->indnkeyatts != def->n_key ||
		index->rd_indexprs != NIL)
		differs = pstrdup("its primary key is not the extension's");
	for (k = 0; differs == NULL && k < def->n_key; k++)
	{
		AttrNumber attnum = attnums[def->key[k]];
		Oid type = TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid;
		Oid opclass = GetDefaultOpClass(type, BTREE_AM_OID);

		if (index->rd_index->indkey.values[k] != attnum ||
			!OidIsValid(opclass) ||
			index->rd_opfamily[k] != get_opclass_family(opclass) ||
			index->rd_indcollation[k] !=
				TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attcollation)
			differs = pstrdup("its primary key is not the extension's");
	}
	index_close(index, AccessShareLock);
	return differs;
}

/*
 * Whether a trigger is a user's: not internal (a foreign key's) and not the
 * extension's own (its name, calling the function of that name in schema
 * checkout).
 */
static bool
is_users_trigger(const TableShape *def, const Trigger *trigger)
{
	if (trigger->tgisinternal)
		return false;
	return def->trigger == NULL ||
		   strcmp(trigger->tgname, def->trigger) != 0 ||
		   strcmp(get_func_name(trigger->tgfoid), def->trigger) != 0 ||
		   get_func_namespace(trigger->tgfoid) !=
			   get_namespace_oid("checkout", false);
}

/*
 * The second index the direct path scans: there, on this table, defined as the
 * extension made it.
 */
static char *
index_difference(const TableShape *def, Relation rel, Oid *index)
{
	int	  nest;
	char *text;

	*index = InvalidOid;
	if (def->index == NULL)
		return NULL;
	*index = get_relname_relid(def->index, RelationGetNamespace(rel));
	if (!OidIsValid(*index) ||
		!list_member_oid(RelationGetIndexList(rel), *index))
		return psprintf("its index %s is missing",
						quote_identifier(def->index));
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	text = pg_get_indexdef_string(*index);
	AtEOXact_GUC(true, nest);
	if (strcmp(text, def->index_definition) != 0)
		return psprintf("its index %s is not the extension's: %s",
						quote_identifier(def->index), text);
	return NULL;
}

/*
 * NULL when the table is exactly as the extension made it; otherwise what
 * differs.
 */
/*
 * Whether writing the table runs a user's code, and which: a rule, a
 * trigger of theirs.
 */
static char *
user_code_difference(const TableShape *def, Relation rel)
{
	int i;

	if (rel->rd_rules != NULL)
		return pstrdup("it has a rule");
	for (i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
		if (is_users_trigger(def, &rel->trigdesc->triggers[i]))
			return psprintf("trigger %s is a user's",
							quote_identifier(
								rel->trigdesc->triggers[i].tgname));
	return NULL;
}

/* user_code: what user_code_difference found */
static char *
shape_difference(const TableShape *def, Relation rel, char *user_code,
				 AttrNumber *attnums, Oid *pkey, Oid *index)
{
	Form_pg_class cls = rel->rd_rel;
	char		 *differs;

	if (cls->relkind != RELKIND_RELATION || cls->relam != HEAP_TABLE_AM_OID)
		return pstrdup("it is not a heap table");
	if (cls->relispartition)
		return pstrdup("it is a partition");
	if (cls->relhassubclass)
		return pstrdup("it has inheritance children");
	if (cls->relrowsecurity || cls->relforcerowsecurity)
		return pstrdup("row security is enabled");
	if (has_policies(RelationGetRelid(rel)))
		return pstrdup("it has row security policies");
	if (user_code != NULL)
		return user_code;
	if ((differs = columns_difference(def, rel, attnums)) != NULL ||
		(differs = constraints_difference(def, rel)) != NULL ||
		(differs = primary_key_difference(def, rel, attnums, pkey)) != NULL ||
		(differs = index_difference(def, rel, index)) != NULL)
		return differs;
	return NULL;
}

static Oid
table_relid(DirectTable table)
{
	Oid relid = direct_table_relid(table);

	if (!OidIsValid(relid))
		elog(ERROR, "checkout: table checkout.%s does not exist",
			 table_shapes[table].name);
	return relid;
}

/*
 * The table's OID as the catalog says now; InvalidOid when it does not exist.
 */
Oid
direct_table_relid(DirectTable table)
{
	return get_relname_relid(table_shapes[table].name,
							 get_namespace_oid("checkout", false));
}

/* The OID direct_table_exists found (as of the last invalidation). */
Oid
direct_table_known_relid(DirectTable table)
{
	return tables[table].relid;
}

/*
 * Whether the table exists: tables a later version added are missing from
 * a schema not yet updated, which the library still serves.
 */
bool
direct_table_exists(DirectTable table)
{
	register_callbacks();
	if (!OidIsValid(tables[table].relid))
		tables[table].relid = direct_table_relid(table);
	return OidIsValid(tables[table].relid);
}

/*
 * The table, opened with table_lockmode, and what is known of it: checked
 * once after each invalidation, with the table lock held so that the
 * table cannot change meanwhile.
 */
static Relation
table_open_known(DirectTable table, LOCKMODE table_lockmode)
{
	TableState *ts = &tables[table];
	Relation	rel = NULL;
	int			tries;

	register_callbacks();
	for (tries = 0; rel == NULL; tries++)
	{
		Oid relid = OidIsValid(ts->relid) ? ts->relid : table_relid(table);

		rel = try_table_open(relid, table_lockmode);
		/*
		 * invalidations were taken in with the table lock: is relid still
		 * checkout.<table>?
		 */
		if (!OidIsValid(ts->relid) && rel != NULL)
			ts->relid = table_relid(table);
		if (rel != NULL && ts->relid != relid)
		{
			table_close(rel, table_lockmode);
			rel = NULL;
		}
		if (rel == NULL && tries > 3)
			elog(ERROR, "checkout: table checkout.%s keeps changing",
				 table_shapes[table].name);
		if (rel == NULL)
			ts->relid = InvalidOid;
	}
	if (!ts->known)
	{
		char *user_code = user_code_difference(&table_shapes[table], rel);
		char *differs = shape_difference(&table_shapes[table], rel, user_code,
										 ts->attnums, &ts->pkey, &ts->index);

		ts->differs = differs
						  ? MemoryContextStrdup(CacheMemoryContext, differs)
						  : NULL;
		ts->user_code = user_code != NULL;
		forget_planned(ts);
		ts->known = true;
	}
	return rel;
}

/* Whether the current user lacks any of `need` on the table; *held: what it
 * has. */
static bool
lacks_privileges(Relation rel, AclMode need, AclMode *held)
{
	*held = pg_class_aclmask(RelationGetRelid(rel), GetUserId(), need,
							 ACLMASK_ALL);
	return (*held & need) != need;
}

/*
 * Why the direct path may not serve this access now, in words (for
 * checkout.table_access()); NULL when it may.
 */
static char *
refusal(DirectTable table, Relation rel, AclMode need)
{
	TableState *ts = &tables[table];
	AclMode		held;

	if (!checkout_direct_access)
		return pstrdup("checkout.direct_access is off");
	if (ExecutorCheckPerms_hook != NULL)
		return pstrdup(
			"an executor permission hook is loaded (pgaudit, sepgsql), which must see every access");
	if (ts->differs != NULL)
		return pstrdup(ts->differs);
	if (lacks_privileges(rel, need, &held))
		return psprintf("%s lacks %s on it",
						GetUserNameFromId(GetUserId(), false),
						(need & ~held & ACL_SELECT)	  ? "SELECT"
						: (need & ~held & ACL_INSERT) ? "INSERT"
						: (need & ~held & ACL_UPDATE) ? "UPDATE"
													  : "DELETE");
	return NULL;
}

/*
 * The table opened for the direct path; NULL (nothing open) when it may not
 * serve.
 */
static Relation
direct_open(DirectTable table, LOCKMODE table_lockmode, AclMode need)
{
	Relation rel;
	AclMode	 held;

	/* the cheap tests first: nothing to open when the path is off */
	if (!checkout_direct_access || ExecutorCheckPerms_hook != NULL)
		return NULL;
	rel = table_open_known(table, table_lockmode);
	if (tables[table].differs != NULL || lacks_privileges(rel, need, &held))
	{
		/* the statement that goes instead takes the same table lock */
		table_close(rel, NoLock);
		return NULL;
	}
	return rel;
}

/*
 * Whether a write of the table, by either path, runs code a user added to
 * it (a trigger of theirs, a rule).
 */
bool
direct_runs_user_code(DirectTable table)
{
	Relation rel = table_open_known(table, AccessShareLock);
	bool	 user_code = tables[table].user_code;

	table_close(rel, NoLock);
	return user_code;
}

bool
direct_usable(DirectTable table, char **why_not)
{
	Relation rel = table_open_known(table, AccessShareLock);

	*why_not = refusal(table, rel, table_shapes[table].uses);
	table_close(rel, NoLock);
	return *why_not == NULL;
}

/* ---- reading and row-locking rows by primary key ---- */

/*
 * A scan of rel, the table opened for the direct path (direct_open), through
 * its primary key or its second index.
 */
static void
key_begin(KeyScan *ks, Relation rel, DirectTable table, bool statement,
		  bool by_pkey)
{
	const TableShape *def = &table_shapes[table];
	TableState		 *ts = &tables[table];
	int				  k;

	ks->rel = rel;
	ks->table = table;
	ks->own_snapshot = statement;
	if (statement)
	{
		CommandCounterIncrement();
		PushActiveSnapshot(GetTransactionSnapshot());
	}
	ks->index = index_open(by_pkey ? ts->pkey : ts->index, AccessShareLock);
	ks->n_key = by_pkey ? def->n_key : 1;
	for (k = 0; k < ks->n_key; k++)
		ks->key_types[k] =
			def->columns[by_pkey ? def->key[k] : def->by_column].type;
	ks->found = table_slot_create(ks->rel, NULL);
	ks->rowlocked = NULL;
	ks->scan = NULL; /* begun for the number of keys of the first scan */
}

static bool
key_open_index(KeyScan *ks, DirectTable table, AclMode need, bool statement,
			   bool by_pkey)
{
	/* a scan that row-locks takes the table lock SELECT ... FOR UPDATE does */
	Relation rel = direct_open(table,
							   (need & (ACL_UPDATE | ACL_DELETE))
								   ? RowShareLock
								   : AccessShareLock,
							   need);

	if (rel == NULL)
		return false;
	key_begin(ks, rel, table, statement, by_pkey);
	return true;
}

/* Rows of the table through its primary key. */
bool
key_open(KeyScan *ks, DirectTable table, AclMode need, bool statement)
{
	return key_open_index(ks, table, need, statement, true);
}

/*
 * Rows of the table through the second index its shape names (key_scan: its
 * first column).
 */
bool
key_open_by(KeyScan *ks, DirectTable table, AclMode need, bool statement)
{
	Assert(table_shapes[table].index != NULL);
	return key_open_index(ks, table, need, statement, false);
}

/*
 * The table lock stays till the end of the transaction, as the executor's
 * does.
 */
void
key_close(KeyScan *ks)
{
	if (ks->scan)
		index_endscan(ks->scan);
	ExecDropSingleTupleTableSlot(ks->found);
	if (ks->rowlocked)
		ExecDropSingleTupleTableSlot(ks->rowlocked);
	index_close(ks->index, NoLock);
	if (ks->own_snapshot)
		PopActiveSnapshot();
	table_close(ks->rel, NoLock);
}

/*
 * Starts over on the rows whose primary key's first n columns equal
 * values, in the key's order.
 */
static void
key_scan_prefix(KeyScan *ks, const Datum *values, int n)
{
	int k;

	Assert(n >= 1 && n <= ks->n_key);
	for (k = 0; k < n; k++)
	{
		Oid type = ks->key_types[k];

		/*
		 * compared as the index orders the column: its operator class, its
		 * collation
		 */
		ScanKeyEntryInitialize(&ks->keys[k], 0, k + 1, BTEqualStrategyNumber,
							   InvalidOid, ks->index->rd_indcollation[k],
							   type == INT8OID	 ? F_INT8EQ
							   : type == INT4OID ? F_INT4EQ
												 : F_TEXTEQ,
							   values[k]);
	}
	if (ks->scan != NULL && ks->scan->numberOfKeys != n)
	{
		index_endscan(ks->scan);
		ks->scan = NULL;
	}
	if (ks->scan == NULL)
		ks->scan = index_beginscan(ks->rel, ks->index, GetActiveSnapshot(), n,
								   0);
	index_rescan(ks->scan, ks->keys, n, NULL, 0);
}

/* Starts over on the rows whose primary key's first column equals value. */
void
key_scan(KeyScan *ks, Datum value)
{
	key_scan_prefix(ks, &value, 1);
}

/* The scan's next row into ks->found; false at the end. */
bool
key_next(KeyScan *ks)
{
	if (!index_getnext_slot(ks->scan, ForwardScanDirection, ks->found))
		return false;
	slot_getallattrs(ks->found);
	return true;
}

/*
 * The row whose primary key (its first column) equals value, into ks->found.
 */
bool
key_find(KeyScan *ks, Datum value)
{
	key_scan(ks, value);
	return key_next(ks);
}

/*
 * The first row whose primary key's first n columns equal values, into
 * ks->found.
 */
bool
key_find_prefix(KeyScan *ks, const Datum *values, int n)
{
	key_scan_prefix(ks, values, n);
	return key_next(ks);
}

/*
 * Whether the version key_rowlock row-locked still has the key the scan
 * looked for: a concurrent update may have changed it, and SQL's recheck of
 * a row-locked row (EvalPlanQual) would then pass the row over.
 */
static bool
rowlocked_has_key(KeyScan *ks)
{
	int k;

	for (k = 0; k < ks->scan->numberOfKeys; k++)
	{
		ScanKey key = &ks->keys[k];
		bool	isnull;
		Datum	value = slot_getattr(ks->rowlocked,
									 ks->index->rd_index->indkey.values[k],
									 &isnull);

		if (isnull ||
			!DatumGetBool(FunctionCall2Coll(&key->sk_func, key->sk_collation,
											value, key->sk_argument)))
			return false;
	}
	return true;
}

/*
 * Row-locks the latest version of the row key_next found, waiting for a
 * concurrent writer, and leaves that version in ks->rowlocked.  False when the
 * row was deleted meanwhile or its key changed (the row lock then stays, as
 * SQL's does); under REPEATABLE READ or SERIALIZABLE a concurrent change is a
 * serialization failure, as for SELECT ... FOR UPDATE and the other row locks.
 */
bool
key_rowlock(KeyScan *ks, LockTupleMode mode)
{
	ItemPointerData tid = ks->found->tts_tid;
	TM_FailureData	tmfd;
	TM_Result		result;

	/*
	 * what the executor says of the same row lock in a read-only transaction
	 * (25006)
	 */
	PreventCommandIfReadOnly(
		mode == LockTupleExclusive		  ? "SELECT FOR UPDATE"
		: mode == LockTupleNoKeyExclusive ? "SELECT FOR NO KEY UPDATE"
		: mode == LockTupleShare		  ? "SELECT FOR SHARE"
										  : "SELECT FOR KEY SHARE");
	Assert(ks->own_snapshot);
	if (ks->rowlocked == NULL)
		ks->rowlocked = table_slot_create(ks->rel, NULL);
	result = table_tuple_lock(ks->rel, &tid, GetActiveSnapshot(),
							  ks->rowlocked, GetCurrentCommandId(true), mode,
							  LockWaitBlock,
							  TUPLE_LOCK_FLAG_LOCK_UPDATE_IN_PROGRESS |
								  (IsolationUsesXactSnapshot()
									   ? 0
									   : TUPLE_LOCK_FLAG_FIND_LAST_VERSION),
							  &tmfd);
	switch (result)
	{
		case TM_Ok:
			slot_getallattrs(ks->rowlocked);
			/* tid was moved along the update chain to the version locked */
			return ItemPointerEquals(&ks->found->tts_tid,
									 &ks->rowlocked->tts_tid) ||
				   rowlocked_has_key(ks);
		case TM_SelfModified:
			/* changed by a later command of this transaction: passed over */
			return false;
		case TM_Updated:
		case TM_Deleted:
			if (IsolationUsesXactSnapshot())
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg(
							 "could not serialize access due to concurrent update")));
			return false;
		default:
			elog(ERROR,
				 "checkout: unexpected result %d locking a row of checkout.%s",
				 (int) result, RelationGetRelationName(ks->rel));
	}
	pg_unreachable();
}

Datum
slot_column(KeyScan *ks, TupleTableSlot *slot, int column, bool *isnull)
{
	AttrNumber attnum = tables[ks->table].attnums[column];

	*isnull = slot->tts_isnull[attnum - 1];
	return slot->tts_values[attnum - 1];
}

ItemPointer
slot_tid(TupleTableSlot *slot)
{
	return &slot->tts_tid;
}

/* ---- writing rows ---- */

/*
 * The table's CHECK constraints planned as ExecRelCheck would (parsed and
 * planned), in TupleConstr order, once per invalidation, and room for its
 * columns' defaults.  Planned in a context of the statement's first, so that
 * an error leaves nothing behind, and kept with the table's state when it
 * succeeds.
 */
static PlannedExprs *
plan_exprs(Relation rel)
{
	TupleDesc	  desc = RelationGetDescr(rel);
	TupleConstr	 *constr = desc->constr;
	int			  n = constr ? constr->num_check : 0;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "checkout planned expressions",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	PlannedExprs *pe = palloc0(sizeof(PlannedExprs));
	int			  i;

	pe->cxt = cxt;
	pe->n_checks = n;
	pe->checks = palloc(sizeof(Expr *) * Max(n, 1));
	for (i = 0; i < n; i++)
		pe->checks[i] = expression_planner(
			(Expr *) stringToNode(constr->check[i].ccbin));
	pe->defaults = palloc0(sizeof(Expr *) * desc->natts);
	pe->default_known = palloc0(sizeof(bool) * desc->natts);
	MemoryContextSwitchTo(old);
	MemoryContextSetParent(cxt, CacheMemoryContext);
	return pe;
}

/*
 * The write's planned expressions, in use until it ends, and its CHECK
 * constraints as ExecRelCheck would evaluate them: ExprStates of the
 * write's own.
 */
static void
prepare_planned(RowWrite *w)
{
	TableState	 *ts = &tables[w->table];
	MemoryContext old;
	int			  i;

	if (w->planned != NULL)
		return;
	if (ts->planned == NULL)
		ts->planned = plan_exprs(w->rel);
	w->planned = ts->planned;
	w->planned->users++;
	old = MemoryContextSwitchTo(w->estate->es_query_cxt);
	w->rri->ri_ConstraintExprs = palloc0(sizeof(ExprState *) *
										 Max(w->planned->n_checks, 1));
	for (i = 0; i < w->planned->n_checks; i++)
		w->rri->ri_ConstraintExprs[i] = ExecInitExpr(w->planned->checks[i],
													 NULL);
	MemoryContextSwitchTo(old);
}

bool
row_write_begin(RowWrite *w, DirectTable table, AclMode need)
{
	RangeTblEntry *rte;

	w->rel = direct_open(table, RowExclusiveLock, need);
	if (w->rel == NULL)
		return false;
	w->table = table;

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

	w->planned = NULL; /* prepared at the first row inserted or updated */

	w->defaults = NULL;
	w->fk_checks = NULL;
	w->estate->es_output_cid = GetCurrentCommandId(true);
	w->estate->es_snapshot = GetActiveSnapshot();
	ExecOpenIndices(w->rri, false);
	EvalPlanQualInit(&w->epq, w->estate, NULL, NIL, -1);
	w->old = table_slot_create(w->rel, &w->estate->es_tupleTable);
	w->new = ExecInitExtraTupleSlot(w->estate, RelationGetDescr(w->rel),
									&TTSOpsVirtual);
	AfterTriggerBeginQuery();
	return true;
}

static AttrNumber
write_attnum(RowWrite *w, int column)
{
	return tables[w->table].attnums[column];
}

/* The type of a column of the table written. */
Oid
row_column_type(RowWrite *w, int column)
{
	return TupleDescAttr(RelationGetDescr(w->rel), write_attnum(w, column) - 1)
		->atttypid;
}

/*
 * The version at tid, which this transaction holds row-locked, into w->old and
 * w->new.
 */
static void
fetch_rowlocked(RowWrite *w, ItemPointer tid)
{
	if (!table_tuple_fetch_row_version(w->rel, tid, SnapshotAny, w->old))
		elog(ERROR,
			 "checkout: a row of checkout.%s vanished under its row lock",
			 RelationGetRelationName(w->rel));
	slot_getallattrs(w->old);
	ExecClearTuple(w->new);
	memcpy(w->new->tts_values, w->old->tts_values,
		   sizeof(Datum) * w->old->tts_nvalid);
	memcpy(w->new->tts_isnull, w->old->tts_isnull,
		   sizeof(bool) * w->old->tts_nvalid);
}

/* Writes w->new over w->old; the new version's tid goes back into tid. */
static void
write_over(RowWrite *w, ItemPointer tid)
{
	prepare_planned(w);
	ExecStoreVirtualTuple(w->new);
	ExecSimpleRelationUpdate(w->rri, w->estate, &w->epq, w->old, w->new);
	*tid = w->new->tts_tid;
}

/*
 * Updates the version at tid (which this transaction holds row-locked, so it
 * is the row's latest): n columns set anew, the others kept.
 */
void
row_update(RowWrite *w, ItemPointer tid, const int *columns,
		   const Datum *values, const bool *isnull, int n)
{
	int i;

	PreventCommandIfReadOnly("UPDATE");
	fetch_rowlocked(w, tid);
	for (i = 0; i < n; i++)
	{
		w->new->tts_values[write_attnum(w, columns[i]) - 1] = values[i];
		w->new->tts_isnull[write_attnum(w, columns[i]) - 1] = isnull[i];
	}
	write_over(w, tid);
}

/*
 * Adds deltas to n bigint NOT NULL columns of the version at tid (held
 * row-locked), as SET c = c + delta does: out of range is 22003.
 */
void
row_add(RowWrite *w, ItemPointer tid, const int *columns, const int64 *deltas,
		int n)
{
	int i;

	PreventCommandIfReadOnly("UPDATE");
	fetch_rowlocked(w, tid);
	for (i = 0; i < n; i++)
	{
		AttrNumber attnum = write_attnum(w, columns[i]);
		int64	   sum;

		if (pg_add_s64_overflow(DatumGetInt64(w->new->tts_values[attnum - 1]),
								deltas[i], &sum))
			ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							errmsg("bigint out of range")));
		w->new->tts_values[attnum - 1] = Int64GetDatum(sum);
	}
	write_over(w, tid);
}

/*
 * A column's default as the rewriter expands it into an INSERT
 * (build_column_default: for an identity column, its sequence looked up in
 * pg_depend), planned once per invalidation; NULL when it has none.
 * Planned in a context of the statement's, kept with the table's planned
 * expressions when it succeeds.
 */
static Expr *
planned_default(RowWrite *w, int i)
{
	PlannedExprs *pe = w->planned;

	if (!pe->default_known[i])
	{
		MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
												  "checkout planned default",
												  ALLOCSET_SMALL_SIZES);
		MemoryContext old = MemoryContextSwitchTo(cxt);
		Node *def = TupleDescAttr(RelationGetDescr(w->rel), i)->attisdropped
						? NULL
						: build_column_default(w->rel, i + 1);

		pe->defaults[i] = def ? expression_planner((Expr *) def) : NULL;
		MemoryContextSwitchTo(old);
		if (def)
			MemoryContextSetParent(cxt, pe->cxt);
		else
			MemoryContextDelete(cxt);
		pe->default_known[i] = true;
	}
	return pe->defaults[i];
}

/* ---- foreign-key checks ---- */

/*
 * A foreign key of the table row_insert writes, checked as RI_FKey_check
 * checks it (SELECT 1 FROM ONLY parent x WHERE key = $1 FOR KEY SHARE OF x,
 * as the parent's owner, under a snapshot of its own, the violation reported
 * in its words) but through the parent's primary key directly, without SPI
 * and an executor start per row.
 */
typedef struct ForeignKeyCheck
{
	Oid			conoid;
	AttrNumber	attnum; /* the referencing column */
	DirectTable parent;
	Relation	parent_rel; /* open with RowShareLock, as RI_FKey_check's */
} ForeignKeyCheck;

typedef struct ForeignKeyChecks
{
	bool			by_triggers; /* the table's triggers check, as in SQL */
	int				n;
	ForeignKeyCheck checks[FLEXIBLE_ARRAY_MEMBER];
} ForeignKeyChecks;

/* Whether the trigger fires in this session (trigger.c's TriggerEnabled). */
static bool
trigger_fires(const Trigger *trigger)
{
	if (trigger->tgenabled == TRIGGER_DISABLED)
		return false;
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		return trigger->tgenabled != TRIGGER_FIRES_ON_ORIGIN;
	return trigger->tgenabled != TRIGGER_FIRES_ON_REPLICA;
}

/*
 * Whether this file can make the check of the foreign key whose trigger this
 * is: a key of one column, referencing the primary key of a table the direct
 * path serves to that table's owner (whom RI_FKey_check runs its query as),
 * with the operator and type the key reads use.  The parent stays open.
 */
static bool
plan_fk_check(RowWrite *w, const Trigger *trigger, List *fkeys,
			  ForeignKeyCheck *check)
{
	ForeignKeyCacheInfo *fk = NULL;
	ListCell			*lc;
	DirectTable			 t;
	Relation			 pk_rel;
	Oid					 save_userid;
	int					 save_sec_context;
	Oid					 key_type;

	foreach(lc, fkeys)
		if (lfirst_node(ForeignKeyCacheInfo, lc)->conoid ==
			trigger->tgconstraint)
			fk = lfirst_node(ForeignKeyCacheInfo, lc);
	if (fk == NULL || fk->nkeys != 1)
		return false;
	for (t = 0; t < DT_COUNT; t++)
		if (table_shapes[t].n_key == 1 && direct_table_exists(t) &&
			direct_table_known_relid(t) == fk->confrelid)
			break;
	if (t == DT_COUNT)
		return false;

	pk_rel = table_open(fk->confrelid, RowShareLock);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(pk_rel->rd_rel->relowner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_NOFORCE_RLS);
	check->parent_rel = direct_open(t, RowShareLock, ACL_SELECT | ACL_UPDATE);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	table_close(pk_rel, NoLock);
	if (check->parent_rel == NULL)
		return false;

	key_type = table_shapes[t].columns[table_shapes[t].key[0]].type;
	if (fk->confkey[0] == tables[t].attnums[table_shapes[t].key[0]] &&
		fk->conpfeqop[0] ==
			get_opfamily_member(get_opclass_family(
									get_index_column_opclass(tables[t].pkey,
															 1)),
								key_type, key_type, BTEqualStrategyNumber) &&
		TupleDescAttr(RelationGetDescr(w->rel), fk->conkey[0] - 1)->atttypid ==
			key_type)
	{
		check->conoid = fk->conoid;
		check->attnum = fk->conkey[0];
		check->parent = t;
		return true;
	}
	table_close(check->parent_rel, NoLock);
	check->parent_rel = NULL;
	return false;
}

/*
 * Decides, at a write's first insert, who checks its foreign keys: this
 * file, when every trigger an insert fires is a foreign key's check that
 * plan_fk_check takes over; otherwise the triggers, as in SQL.  A check that
 * would not fire in this session (disabled, session_replication_role) is not
 * made, and a deferrable one is left to its trigger (SET CONSTRAINTS may put
 * it off to the commit).
 */
static ForeignKeyChecks *
plan_fk_checks(RowWrite *w)
{
	TriggerDesc		 *td = w->rel->trigdesc;
	int				  n_triggers = td ? td->numtriggers : 0;
	ForeignKeyChecks *fc = MemoryContextAllocZero(w->estate->es_query_cxt,
												  offsetof(ForeignKeyChecks,
														   checks) +
													  sizeof(ForeignKeyCheck) *
														  Max(n_triggers, 1));
	List			 *fkeys = RelationGetFKeyList(w->rel);
	int				  i;

	for (i = 0; i < n_triggers; i++)
	{
		const Trigger *trigger = &td->triggers[i];

		if (!TRIGGER_FOR_INSERT(trigger->tgtype))
			continue;
		if (!trigger->tgisinternal || trigger->tgfoid != F_RI_FKEY_CHECK_INS ||
			!TRIGGER_FOR_ROW(trigger->tgtype) ||
			!TRIGGER_FOR_AFTER(trigger->tgtype) || trigger->tgdeferrable)
			fc->by_triggers = true;
		else if (trigger_fires(trigger))
		{
			if (plan_fk_check(w, trigger, fkeys, &fc->checks[fc->n]))
				fc->n++;
			else
				fc->by_triggers = true;
		}
		if (fc->by_triggers)
			break;
	}
	return fc;
}

/* The violation as ri_ReportViolation words it for an insert. */
static void
report_fk_violation(RowWrite *w, const ForeignKeyCheck *check, Datum value)
{
	Oid				  relid = RelationGetRelid(w->rel);
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(w->rel),
										  check->attnum - 1);
	char			 *conname = get_constraint_name(check->conoid);
	char			 *shown = NULL;

	/* the key's value only to whom may read it, as ri_ReportViolation */
	if (check_enable_rls(relid, InvalidOid, true) != RLS_ENABLED &&
		(pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK ||
		 pg_attribute_aclcheck(relid, check->attnum, GetUserId(),
							   ACL_SELECT) == ACLCHECK_OK))
	{
		Oid	 output;
		bool is_varlena;

		getTypeOutputInfo(att->atttypid, &output, &is_varlena);
		shown = OidOutputFunctionCall(output, value);
	}
	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("insert or update on table \"%s\" violates foreign key constraint \"%s\"",
					RelationGetRelationName(w->rel), conname),
			 shown ? errdetail("Key (%s)=(%s) is not present in table \"%s\".",
							   NameStr(att->attname), shown,
							   RelationGetRelationName(check->parent_rel))
				   : errdetail("Key is not present in table \"%s\".",
							   RelationGetRelationName(check->parent_rel)),
			 errtableconstraint(w->rel, conname)));
}

/* The check of the row just inserted, as its trigger would make it. */
static void
fk_check_row(RowWrite *w, const ForeignKeyCheck *check)
{
	bool	isnull = w->new->tts_isnull[check->attnum - 1];
	Datum	value = w->new->tts_values[check->attnum - 1];
	KeyScan ks;
	bool	present;
	Oid		save_userid;
	int		save_sec_context;

	if (isnull)
		return; /* a null key passes (MATCH SIMPLE) */
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(check->parent_rel->rd_rel->relowner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_NOFORCE_RLS);
	key_begin(&ks, table_open(RelationGetRelid(check->parent_rel), NoLock),
			  check->parent, true, true);
	present = key_find(&ks, value) && key_rowlock(&ks, LockTupleKeyShare);
	key_close(&ks);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	if (!present)
		report_fk_violation(w, check, value);
}

/*
 * Inserts a row: n columns given, the others their defaults (or NULL), as
 * an INSERT naming those columns would.  A column's default gets its
 * ExprState at the write's first row that needs it, not at every row.
 */
void
row_insert(RowWrite *w, const int *columns, const Datum *values,
		   const bool *isnull, int n)
{
	TupleDesc desc = RelationGetDescr(w->rel);
	bool	 *given = palloc0(sizeof(bool) * desc->natts);
	int		  i;

	PreventCommandIfReadOnly("INSERT");
	prepare_planned(w);
	if (w->defaults == NULL)
		w->defaults = palloc0(sizeof(ExprState *) * desc->natts);
	ExecClearTuple(w->new);
	for (i = 0; i < n; i++)
	{
		AttrNumber attnum = write_attnum(w, columns[i]);

		w->new->tts_values[attnum - 1] = values[i];
		w->new->tts_isnull[attnum - 1] = isnull[i];
		given[attnum - 1] = true;
	}
	for (i = 0; i < desc->natts; i++)
	{
		if (given[i])
			continue;
		/* the write's ExprState, once per write, of a default planned */
		if (w->defaults[i] == NULL)
		{
			Expr *def = planned_default(w, i);

			if (def != NULL)
			{
				MemoryContext old = MemoryContextSwitchTo(
					w->estate->es_query_cxt);

				w->defaults[i] = ExecInitExpr(def, NULL);
				MemoryContextSwitchTo(old);
			}
		}
		w->new->tts_isnull[i] = true;
		if (w->defaults[i] != NULL)
			w->new->tts_values[i] =
				ExecEvalExprSwitchContext(w->defaults[i],
										  GetPerTupleExprContext(w->estate),
										  &w->new->tts_isnull[i]);
	}
	ExecStoreVirtualTuple(w->new);
	if (w->fk_checks == NULL)
		w->fk_checks = plan_fk_checks(w);
	if (w->fk_checks->by_triggers)
		ExecSimpleRelationInsert(w->rri, w->estate, w->new);
	else
	{
		TriggerDesc *triggers = w->rri->ri_TrigDesc;

		/* every trigger the insert would fire is a check made below */
		w->rri->ri_TrigDesc = NULL;
		ExecSimpleRelationInsert(w->rri, w->estate, w->new);
		w->rri->ri_TrigDesc = triggers;
		for (i = 0; i < w->fk_checks->n; i++)
			fk_check_row(w, &w->fk_checks->checks[i]);
	}
}

/* A column of the row row_insert wrote last, defaults filled in. */
Datum
row_inserted(RowWrite *w, int column, bool *isnull)
{
	AttrNumber attnum = write_attnum(w, column);

	*isnull = w->new->tts_isnull[attnum - 1];
	return w->new->tts_values[attnum - 1];
}

/* Deletes the version at tid, which this transaction holds row-locked. */
void
row_delete(RowWrite *w, ItemPointer tid)
{
	PreventCommandIfReadOnly("DELETE");
	fetch_rowlocked(w, tid);
	ExecSimpleRelationDelete(w->rri, w->estate, &w->epq, w->old);
}

/* Fires the queued AFTER ROW triggers (foreign-key checks) and lets go. */
void
row_write_end(RowWrite *w)
{
	AfterTriggerEndQuery(w->estate);
	if (w->fk_checks)
	{
		int i;

		for (i = 0; i < w->fk_checks->n; i++)
			table_close(w->fk_checks->checks[i].parent_rel, NoLock);
	}
	/* the relations the triggers opened: another RowWrite's, when nested */
	ExecCloseResultRelations(w->estate);
	ExecCloseIndices(w->rri);
	EvalPlanQualEnd(&w->epq);
	ExecResetTupleTable(w->estate->es_tupleTable, false);
	FreeExecutorState(w->estate);
	if (w->planned)
		release_planned(w->planned);
	table_close(w->rel, NoLock);
}
