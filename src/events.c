/*
 * events.c — structured events: `[checkout] <event> {json}` lines in the
 * server log, rows in checkout.events, and NOTIFY for events the application
 * must act on.
 *
 * All three follow the transaction: table rows and NOTIFY are transactional
 * by nature; server-log lines are buffered and written only when the
 * transaction commits, and lines made inside a rolled-back subtransaction
 * (a failed phase) are dropped.  So the log never reports work that did not
 * happen.  The buffer lives in TopTransactionContext and is tracked per
 * subtransaction nesting level.
 *
 * JSON is built with escape_json(): cart ids, references and reasons are user
 * data.  A disabled event costs one test of event_wanted().
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "checkout.h"

typedef struct PendingLine
{
	int			nest_level;
	char	   *line;
} PendingLine;

static List *pending_lines = NIL;

static bool
logging_category(int category)
{
	return checkout_logging && (checkout_log_event_mask & category) != 0;
}

static bool
notify_on(void)
{
	return checkout_notify_channel != NULL && checkout_notify_channel[0] != '\0';
}

bool
event_wanted(int category, bool notify)
{
	return logging_category(category) || (notify && notify_on());
}

void
event_begin(CheckoutEvent *ev, int category, const char *name,
			int64 lock_id, const char *cart_id, bool notify)
{
	ev->name = name;
	ev->notify_name = name;
	ev->lock_id = lock_id;
	ev->cart_id = cart_id;
	ev->category = category;
	ev->notify = notify;
	initStringInfo(&ev->json);
	appendStringInfo(&ev->json, "{\"lock_id\":" INT64_FORMAT ",\"cart_id\":", lock_id);
	escape_json(&ev->json, cart_id ? cart_id : "");
}

void
event_add_text(CheckoutEvent *ev, const char *key, const char *value)
{
	appendStringInfoChar(&ev->json, ',');
	escape_json(&ev->json, key);
	appendStringInfoChar(&ev->json, ':');
	if (value)
		escape_json(&ev->json, value);
	else
		appendStringInfoString(&ev->json, "null");
}

void
event_add_int(CheckoutEvent *ev, const char *key, int64 value)
{
	appendStringInfoChar(&ev->json, ',');
	escape_json(&ev->json, key);
	appendStringInfo(&ev->json, ":" INT64_FORMAT, value);
}

/* json must already be valid JSON text (a number, object or array we built) */
void
event_add_raw(CheckoutEvent *ev, const char *key, const char *json)
{
	appendStringInfoChar(&ev->json, ',');
	escape_json(&ev->json, key);
	appendStringInfoChar(&ev->json, ':');
	appendStringInfoString(&ev->json, json ? json : "null");
}

static void
buffer_log_line(const char *name, const char *json)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingLine *pl = palloc(sizeof(PendingLine));

	pl->nest_level = GetCurrentTransactionNestLevel();
	pl->line = psprintf("[checkout] %s %s", name, json);
	pending_lines = lappend(pending_lines, pl);
	MemoryContextSwitchTo(old);
}

static void
insert_event_row(CheckoutEvent *ev)
{
	static SPIPlanPtr plan = NULL;
	static const Oid types[4] = {TEXTOID, INT8OID, TEXTOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	values[0] = CStringGetTextDatum(ev->name);
	values[1] = Int64GetDatum(ev->lock_id);
	if (ev->cart_id)
		values[2] = CStringGetTextDatum(ev->cart_id);
	else
		nulls[2] = 'n';
	values[3] = CStringGetTextDatum(ev->json.data);
	checkout_exec(&plan,
				  "INSERT INTO checkout.events (event, lock_id, cart_id, detail) "
				  "VALUES ($1, $2, $3, $4::pg_catalog.jsonb)",
				  4, types, values, nulls, false, 0);
}

static void
send_notify(CheckoutEvent *ev)
{
	StringInfoData payload;

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"event\":");
	escape_json(&payload, ev->notify_name);
	appendStringInfo(&payload, ",%s", ev->json.data + 1);

	/*
	 * NOTIFY payloads must be shorter than 8000 bytes (NOTIFY_PAYLOAD_MAX_LENGTH,
	 * private to async.c); long user text must not make the call fail.
	 */
	if (payload.len >= 8000)
	{
		resetStringInfo(&payload);
		appendStringInfoString(&payload, "{\"event\":");
		escape_json(&payload, ev->notify_name);
		appendStringInfo(&payload, ",\"lock_id\":" INT64_FORMAT ",\"truncated\":true}",
						 ev->lock_id);
	}
	Async_Notify(checkout_notify_channel, payload.data);
}

void
event_emit(CheckoutEvent *ev)
{
	appendStringInfoChar(&ev->json, '}');

	if (logging_category(ev->category))
	{
		if (checkout_log_destination != LOG_DEST_TABLE)
			buffer_log_line(ev->name, ev->json.data);
		if (checkout_log_destination != LOG_DEST_SERVER_LOG)
			insert_event_row(ev);
	}
	if (ev->notify && notify_on())
		send_notify(ev);
	pfree(ev->json.data);
}

static void
flush_pending_lines(void)
{
	ListCell   *lc;

	if (message_level_is_interesting(LOG))
	{
		foreach(lc, pending_lines)
		{
			PendingLine *pl = (PendingLine *) lfirst(lc);

			ereport(LOG, (errmsg_internal("%s", pl->line),
						  errhidestmt(true), errhidecontext(true)));
		}
	}
	pending_lines = NIL;
}

static void
events_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			flush_pending_lines();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			pending_lines = NIL;	/* the memory goes with the transaction */
			break;
		default:
			break;
	}
}

static void
events_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (pending_lines == NIL)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		foreach(lc, pending_lines)
		{
			PendingLine *pl = (PendingLine *) lfirst(lc);

			if (pl->nest_level >= level)
				pending_lines = foreach_delete_current(pending_lines, lc);
		}
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending_lines)
		{
			PendingLine *pl = (PendingLine *) lfirst(lc);

			if (pl->nest_level >= level)
				pl->nest_level = level - 1;
		}
	}
}

void
events_init(void)
{
	RegisterXactCallback(events_xact_callback, NULL);
	RegisterSubXactCallback(events_subxact_callback, NULL);
}

/* checkout.log_events: a comma list of categories, or all / none */
bool
check_log_events(char **newval, void **extra, GucSource source)
{
	char	   *raw = pstrdup(*newval);
	List	   *items;
	ListCell   *lc;
	int			mask = 0;
	int		   *result;

	if (!SplitIdentifierString(raw, ',', &items))
	{
		GUC_check_errdetail("List syntax is invalid.");
		return false;
	}
	foreach(lc, items)
	{
		const char *tok = (const char *) lfirst(lc);

		if (pg_strcasecmp(tok, "lifecycle") == 0)
			mask |= EVC_LIFECYCLE;
		else if (pg_strcasecmp(tok, "failures") == 0)
			mask |= EVC_FAILURES;
		else if (pg_strcasecmp(tok, "rollbacks") == 0)
			mask |= EVC_ROLLBACKS;
		else if (pg_strcasecmp(tok, "price_drift") == 0)
			mask |= EVC_PRICE_DRIFT;
		else if (pg_strcasecmp(tok, "phases") == 0)
			mask |= EVC_PHASES;
		else if (pg_strcasecmp(tok, "stock") == 0)
			mask |= EVC_STOCK;
		else if (pg_strcasecmp(tok, "all") == 0)
			mask |= EVC_ALL;
		else if (pg_strcasecmp(tok, "none") == 0)
			mask |= 0;
		else
		{
			GUC_check_errdetail("Unrecognized event category \"%s\"; use lifecycle, failures, rollbacks, price_drift, phases, stock, all or none.", tok);
			return false;
		}
	}
	result = (int *) malloc(sizeof(int));
	if (result == NULL)
		return false;
	*result = mask;
	*extra = result;
	return true;
}

void
assign_log_events(const char *newval, void *extra)
{
	checkout_log_event_mask = *(int *) extra;
}
