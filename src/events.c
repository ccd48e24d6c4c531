/*
 * events.c — the event catalogue and its outputs.
 *
 * One table (event_catalogue) names every event, its log category and
 * whether it wakes the application through NOTIFY; the categories table
 * drives checkout.log_events (its check hook and its default).
 *
 * Everything follows the transaction.  Server-log lines and checkout.events
 * rows are buffered (in TopTransactionContext, tagged with the subtransaction
 * nesting level) and dropped with a rolled-back subtransaction; log lines are
 * written at commit, table rows by events_flush() at the end of each API call
 * in one INSERT, so building an event never runs SQL and never clobbers the
 * caller's SPI_tuptable.  NOTIFY is transactional by nature.
 *
 * NOTIFY has no access control (any role may LISTEN or NOTIFY on a channel),
 * so a payload is a wake-up carrying identifiers only — event, lock_id and
 * compensation_id — never payment references or amounts.
 *
 * JSON is built with escape_json(): cart ids, references and reasons are
 * user data.  A disabled event costs one test of event_wanted().
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/varlena.h"

#include "events.h"
#include "settings.h"
#include "util.h"

/*
 * What may be notified, by its NOTIFY "event" name; checkout.notify_events
 * picks among them.  By default only what the application must act on and
 * has not been told by a call's result: a void or refund to make, and an
 * expiry (made by the worker).  A NOTIFY costs every committing transaction
 * a turn at the notification queue, which PostgreSQL lets one committing
 * transaction at a time write (a heavyweight lock for the whole cluster), so
 * `completed` and `failed`,
 * which the calling session already has, are opt-in.
 */
#define NTF_VOID	  0x01
#define NTF_REFUND	  0x02
#define NTF_EXPIRED	  0x04
#define NTF_COMPLETED 0x08
#define NTF_FAILED	  0x10

/* a name in a list setting (checkout.log_events, checkout.notify_events) */
typedef struct NamedBit
{
	const char *name;
	int			bit;
	bool		by_default;
} NamedBit;

static const NamedBit notify_names[] = {
	{.name = "void_required", .bit = NTF_VOID, .by_default = true},
	{.name = "refund_required", .bit = NTF_REFUND, .by_default = true},
	{.name = "expired", .bit = NTF_EXPIRED, .by_default = true},
	{.name = "completed", .bit = NTF_COMPLETED, .by_default = false},
	{.name = "failed", .bit = NTF_FAILED, .by_default = false},
};

typedef struct EventDef
{
	const char *name; /* in the log line and events.event */
	int			category;
	int			notify; /* NTF_* bits this event may be notified as */
} EventDef;

static const EventDef event_catalogue[EV_COUNT] = {
	[EV_STARTED] = {"started", EVC_LIFECYCLE, 0},
	[EV_EXTENDED] = {"extended", EVC_LIFECYCLE, 0},
	[EV_PHASE_COMPLETED] = {"phase completed", EVC_PHASES, 0},
	[EV_PRICE_LOCKED] = {"price locked", EVC_PHASES, 0},
	[EV_PRICE_DRIFT] = {"price drift", EVC_PRICE_DRIFT, 0},
	[EV_STOCK_RESERVED] = {"stock reserved", EVC_STOCK, 0},
	[EV_STOCK_RELEASED] = {"stock released", EVC_STOCK, 0},
	[EV_STOCK_COMMITTED] = {"stock committed", EVC_STOCK, 0},
	[EV_ROLLBACK_STARTED] = {"rollback started", EVC_ROLLBACKS, 0},
	/* these two when they record a void or refund to make */
	[EV_ROLLBACK_STEP] = {"rollback step completed", EVC_ROLLBACKS,
						  NTF_VOID | NTF_REFUND},
	[EV_PAYMENT_REFUSED] = {"payment refused", EVC_FAILURES,
							NTF_VOID | NTF_REFUND},
	[EV_COMPLETED] = {"completed", EVC_LIFECYCLE, NTF_COMPLETED},
	[EV_FAILED] = {"failed", EVC_FAILURES, NTF_FAILED},
	[EV_EXPIRED] = {"expired", EVC_LIFECYCLE, NTF_EXPIRED},
	[EV_CANCELLED] = {"cancelled", EVC_LIFECYCLE, 0},
};

static const NamedBit event_categories[] = {
	{.name = "lifecycle", .bit = EVC_LIFECYCLE, .by_default = true},
	{.name = "failures", .bit = EVC_FAILURES, .by_default = true},
	{.name = "rollbacks", .bit = EVC_ROLLBACKS, .by_default = true},
	{.name = "price_drift", .bit = EVC_PRICE_DRIFT, .by_default = true},
	{.name = "phases", .bit = EVC_PHASES, .by_default = false},
	{.name = "stock", .bit = EVC_STOCK, .by_default = false},
};

/* a log line or a table row waiting for commit or for events_flush() */
typedef struct PendingEvent
{
	int		  nest_level;
	EventKind kind;
	int64	  lock_id;
	char	 *cart_id;
	char	 *text; /* the log line, or the row's detail JSON */
} PendingEvent;

/*
 * Log lines wait for commit; table rows only for the end of the API call
 * (events_flush), so they are kept apart: a long transaction's many log
 * lines must not make every flush walk them.
 */
static List *pending_lines = NIL;
static List *pending_rows = NIL;

/*
 * events_hold: events emitted from here on may yet be taken back
 * (events_discard), as a late reservation's are when it must decide again.
 * Only events that are never notified are emitted while held.
 */
static bool holding = false;
static int	held_lines_from;
static int	held_rows_from;

static bool
logging_category(int category)
{
	return checkout_logging && (checkout_log_event_mask & category) != 0;
}

/*
 * the NTF_* bits of checkout.notify_events that are on, if there is a channel
 */
static int
notify_mask(void)
{
	if (checkout_notify_channel == NULL || checkout_notify_channel[0] == '\0')
		return 0;
	return checkout_notify_event_mask;
}

static int
notify_bit(const char *name)
{
	int i;

	for (i = 0; i < lengthof(notify_names); i++)
		if (strcmp(notify_names[i].name, name) == 0)
			return notify_names[i].bit;
	return 0;
}

bool
event_wanted(EventKind kind)
{
	const EventDef *def = &event_catalogue[kind];

	return logging_category(def->category) ||
		   (def->notify & notify_mask()) != 0;
}

void
event_begin(CheckoutEvent *ev, EventKind kind, int64 lock_id,
			const char *cart_id)
{
	ev->kind = kind;
	ev->lock_id = lock_id;
	ev->cart_id = cart_id;
	/* compensation events name their kind (event_notify_compensation) */
	ev->notify_as = (event_catalogue[kind].notify & (NTF_VOID | NTF_REFUND))
						? NULL
						: event_catalogue[kind].name;
	ev->compensation_id = 0;
	initStringInfo(&ev->json);
	appendStringInfo(&ev->json,
					 "{\"lock_id\":" INT64_FORMAT ",\"cart_id\":", lock_id);
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

/* json must already be valid, compact JSON text (a number or what we built) */
void
event_add_raw(CheckoutEvent *ev, const char *key, const char *json)
{
	appendStringInfoChar(&ev->json, ',');
	escape_json(&ev->json, key);
	appendStringInfoChar(&ev->json, ':');
	appendStringInfoString(&ev->json, json ? json : "null");
}

void
event_add_time(CheckoutEvent *ev, const char *key, TimestampTz t)
{
	event_add_text(ev, key, timestamp_iso_utc(t));
}

/* The event records a void or refund the application must make: notify it. */
void
event_notify_compensation(CheckoutEvent *ev, const char *kind,
						  int64 compensation_id)
{
	Assert(event_catalogue[ev->kind].notify & notify_bit(kind));
	ev->notify_as = kind;
	ev->compensation_id = compensation_id;
	event_add_text(ev, "compensation", kind);
	event_add_int(ev, "compensation_id", compensation_id);
}

static void
buffer_event(CheckoutEvent *ev, bool is_row)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingEvent *pe = palloc(sizeof(PendingEvent));

	pe->nest_level = GetCurrentTransactionNestLevel();
	pe->kind = ev->kind;
	pe->lock_id = ev->lock_id;
	pe->cart_id = ev->cart_id ? pstrdup(ev->cart_id) : NULL;
	if (is_row)
	{
		pe->text = pstrdup(ev->json.data);
		pending_rows = lappend(pending_rows, pe);
	}
	else
	{
		pe->text = psprintf("[checkout] %s %s", event_catalogue[ev->kind].name,
							ev->json.data);
		pending_lines = lappend(pending_lines, pe);
	}
	MemoryContextSwitchTo(old);
}

static void
send_notify(CheckoutEvent *ev)
{
	StringInfoData payload;

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"event\":");
	escape_json(&payload, ev->notify_as);
	appendStringInfo(&payload, ",\"lock_id\":" INT64_FORMAT, ev->lock_id);
	if (ev->compensation_id > 0)
		appendStringInfo(&payload, ",\"compensation_id\":" INT64_FORMAT,
						 ev->compensation_id);
	appendStringInfoChar(&payload, '}');
	Async_Notify(checkout_notify_channel, payload.data);
}

void
event_emit(CheckoutEvent *ev)
{
	const EventDef *def = &event_catalogue[ev->kind];

	appendStringInfoChar(&ev->json, '}');
	if (logging_category(def->category))
	{
		if (checkout_log_destination != LOG_DEST_TABLE)
			buffer_event(ev, false);
		if (checkout_log_destination != LOG_DEST_SERVER_LOG)
			buffer_event(ev, true);
	}
	if (ev->notify_as && (notify_bit(ev->notify_as) & notify_mask()))
	{
		if (holding)
			elog(ERROR,
				 "checkout event \"%s\" cannot be notified while events are held",
				 def->name);
		send_notify(ev);
	}
	pfree(ev->json.data);
}

/*
 * Whether events are held: an API call made from within one (a user's trigger)
 * does not hold again.
 */
bool
events_held(void)
{
	return holding;
}

void
events_hold(void)
{
	Assert(!holding);
	holding = true;
	held_lines_from = list_length(pending_lines);
	held_rows_from = list_length(pending_rows);
}

/* The held events stand. */
void
events_release(void)
{
	holding = false;
}

/* The held events are taken back: they were never emitted. */
void
events_discard(void)
{
	Assert(holding);
	holding = false;
	pending_lines = list_truncate(pending_lines, held_lines_from);
	pending_rows = list_truncate(pending_rows, held_rows_from);
}

/* Writes the buffered checkout.events rows of this (sub)transaction. */
void
events_flush(void)
{
	static Statement insert = {
		.sql =
			"INSERT INTO checkout.events (event, lock_id, cart_id, detail) "
			"SELECT e.event, e.lock_id, e.cart_id, e.detail::pg_catalog.jsonb "
			"FROM ROWS FROM (pg_catalog.unnest($1::text[]), "
			"  pg_catalog.unnest($2::int8[]), pg_catalog.unnest($3::text[]), "
			"  pg_catalog.unnest($4::text[])) "
			"WITH ORDINALITY AS e(event, lock_id, cart_id, detail, n) "
			"ORDER BY e.n",
		.nargs = 4,
		.argtypes = {TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID},
	};
	ListCell *lc;
	int		  n = list_length(pending_rows);
	Datum	 *names, *ids, *carts, *details;
	bool	 *cart_nulls;
	Datum	  values[4];
	int		  dims[1];
	int		  lbs[1] = {1};

	if (n == 0)
		return;

	names = palloc(sizeof(Datum) * n);
	ids = palloc(sizeof(Datum) * n);
	carts = palloc(sizeof(Datum) * n);
	details = palloc(sizeof(Datum) * n);
	cart_nulls = palloc0(sizeof(bool) * n);
	n = 0;
	foreach(lc, pending_rows)
	{
		PendingEvent *pe = (PendingEvent *) lfirst(lc);

		names[n] = CStringGetTextDatum(event_catalogue[pe->kind].name);
		ids[n] = Int64GetDatum(pe->lock_id);
		if (pe->cart_id)
			carts[n] = CStringGetTextDatum(pe->cart_id);
		else
			cart_nulls[n] = true;
		details[n] = CStringGetTextDatum(pe->text);
		n++;
	}
	list_free_deep(pending_rows);
	pending_rows = NIL;
	dims[0] = n;
	values[0] = PointerGetDatum(
		construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(ids, n, INT8OID, sizeof(int64),
												FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_md_array(carts, cart_nulls, 1, dims,
												   lbs, TEXTOID, -1, false,
												   TYPALIGN_INT));
	values[3] = PointerGetDatum(
		construct_array(details, n, TEXTOID, -1, false, TYPALIGN_INT));
	stmt_exec(&insert, values, NULL, false);
}

/*
 * One batch of events older than checkout.event_retention; returns rows
 * deleted.
 */
int64
checkout_prune_events(int batch)
{
	static Statement prune = {
		.sql =
			"DELETE FROM checkout.events "
			"WHERE event_id IN ( SELECT event_id FROM checkout.events WHERE "
			"  logged_at < pg_catalog.now() - pg_catalog.make_interval(secs "
			"  => $1) LIMIT $2)",
		.nargs = 2,
		.argtypes = {INT4OID, INT4OID},
	};
	Datum values[2] = {Int32GetDatum(checkout_event_retention_s),
					   Int32GetDatum(batch)};

	return stmt_exec(&prune, values, NULL, false);
}

static void
flush_log_lines(void)
{
	ListCell *lc;
	bool	  interesting = message_level_is_interesting(LOG);

	foreach(lc, pending_lines)
	{
		PendingEvent *pe = (PendingEvent *) lfirst(lc);

		if (interesting)
			ereport(LOG, (errmsg_internal("%s", pe->text), errhidestmt(true),
						  errhidecontext(true)));
	}
	pending_lines = NIL;
	pending_rows = NIL; /* none: each API call flushes its own */
}

/*
 * A committed transaction's lines are written once its row and table locks
 * are released: a write to the server log never lengthens the row locks
 * other checkouts wait on (a hot sku's ledger row is held until then).
 */
static void
events_release_callback(ResourceReleasePhase phase, bool isCommit,
						bool isTopLevel, void *arg)
{
	if (phase == RESOURCE_RELEASE_AFTER_LOCKS && isTopLevel && isCommit)
		flush_log_lines();
}

static void
events_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PREPARE:
			/*
			 * a prepared transaction keeps its row locks till COMMIT PREPARED:
			 * write its lines now
			 */
			flush_log_lines();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			pending_lines = NIL; /* the memory goes with the transaction */
			pending_rows = NIL;
			holding = false;
			break;
		default:
			break;
	}
}

static List *
pending_at_subxact_end(List *pending, SubXactEvent event, int level)
{
	ListCell *lc;

	foreach(lc, pending)
	{
		PendingEvent *pe = (PendingEvent *) lfirst(lc);

		if (pe->nest_level < level)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			pending = foreach_delete_current(pending, lc);
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			pe->nest_level = level - 1;
	}
	return pending;
}

static void
events_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	int level = GetCurrentTransactionNestLevel();

	if (event == SUBXACT_EVENT_ABORT_SUB)
		holding = false; /* an error left the call that held them */
	pending_lines = pending_at_subxact_end(pending_lines, event, level);
	pending_rows = pending_at_subxact_end(pending_rows, event, level);
}

void
events_init(void)
{
	RegisterXactCallback(events_xact_callback, NULL);
	RegisterResourceReleaseCallback(events_release_callback, NULL);
	RegisterSubXactCallback(events_subxact_callback, NULL);
}

/* The names marked by_default, comma-separated, into buf. */
static const char *
default_names(const NamedBit *names, int n, char *buf, size_t size)
{
	int i;

	if (buf[0] == '\0')
		for (i = 0; i < n; i++)
			if (names[i].by_default)
				snprintf(buf + strlen(buf), size - strlen(buf), "%s%s",
						 buf[0] ? "," : "", names[i].name);
	return buf;
}

/*
 * A check hook's work for a list setting: a comma list of the names, or all
 * or none, into a bit mask (*extra).  `choices` lists them for the detail.
 */
static bool
check_name_list(char **newval, void **extra, const NamedBit *names, int n,
				const char *what, const char *choices)
{
	char	 *raw = pstrdup(*newval);
	List	 *items;
	ListCell *lc;
	int		  mask = 0;
	int		 *result;

	if (!SplitIdentifierString(raw, ',', &items))
	{
		GUC_check_errdetail("List syntax is invalid.");
		return false;
	}
	foreach(lc, items)
	{
		const char *tok = (const char *) lfirst(lc);
		int			i;
		bool		known = pg_strcasecmp(tok, "none") == 0;

		for (i = 0; i < n; i++)
		{
			if (pg_strcasecmp(tok, "all") == 0 ||
				pg_strcasecmp(tok, names[i].name) == 0)
			{
				mask |= names[i].bit;
				known = true;
			}
		}
		if (!known)
		{
			GUC_check_errdetail("Unrecognized %s \"%s\"; use %s, all or none.",
								what, tok, choices);
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

/* "lifecycle,failures,rollbacks,price_drift": what is logged by default */
const char *
log_events_default(void)
{
	static char buf[128];

	return default_names(event_categories, lengthof(event_categories), buf,
						 sizeof(buf));
}

/* checkout.log_events: a comma list of categories, or all / none */
bool
check_log_events(char **newval, void **extra, GucSource source)
{
	return check_name_list(newval, extra, event_categories,
						   lengthof(event_categories), "event category",
						   "lifecycle, failures, rollbacks, price_drift, phases, stock");
}

void
assign_log_events(const char *newval, void *extra)
{
	checkout_log_event_mask = *(int *) extra;
}

/* "void_required,refund_required,expired": what is notified by default */
const char *
notify_events_default(void)
{
	static char buf[128];

	return default_names(notify_names, lengthof(notify_names), buf,
						 sizeof(buf));
}

/* checkout.notify_events: a comma list of notified events, or all / none */
bool
check_notify_events(char **newval, void **extra, GucSource source)
{
	return check_name_list(newval, extra, notify_names, lengthof(notify_names),
						   "event",
						   "void_required, refund_required, expired, completed, failed");
}

void
assign_notify_events(const char *newval, void *extra)
{
	checkout_notify_event_mask = *(int *) extra;
}
