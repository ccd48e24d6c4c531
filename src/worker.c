/*
 * worker.c — the background workers that expire abandoned checkouts.
 *
 * Everything here needs shared_preload_libraries: checkout.c defines
 * checkout.database, requests the shared memory (wakeup.c) and registers
 * the launcher only while the library is being preloaded.
 *
 * A launcher (static worker, started once recovery has finished, so never on
 * a hot standby) starts one sweeper per database named in checkout.database.
 * It tries again RETRY_MS after the previous attempt for a database that does
 * not exist yet, a sweeper that could not start, or one that stopped sooner
 * than that; a sweeper that ran longer is started again at once.  Each
 * failure to start is logged once per cause.  A sweeper expires due locks in
 * batches through checkout_expire_due() — the same code path as
 * checkout_cleanup_expired() — prunes old events and rebalances striped
 * skus, each batch in its own transaction.
 *
 * The launcher gives each database a slot of wakeup.c's shared memory
 * before it starts the database's sweeper; the sweeper sleeps until the
 * earliest deadline posted there (a backend posts one when it commits a
 * new lock), or checkout.cleanup_interval, whichever is sooner.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

#include "events.h"
#include "expiry.h"
#include "settings.h"
#include "stripes.h"
#include "util.h"
#include "wakeup.h"
#include "worker.h"

#define MAX_SWEEPERS WAKEUP_SLOTS
#define SWEEP_BATCH	 1000
#define PRUNE_BATCH	 10000
#define RETRY_MS	 10000 /* between attempts to start a database's sweeper */
#define LAUNCHER_RESTART_S \
	5 /* a failed launcher is started again after this */

/* What the launcher hands a sweeper in bgw_extra. */
typedef struct SweeperArgs
{
	int	 slot;
	char dbname[NAMEDATALEN];
} SweeperArgs;

StaticAssertDecl(sizeof(SweeperArgs) <= BGW_EXTRALEN,
				 "SweeperArgs must fit in bgw_extra");

/* checkout.database as its check hook parsed it (the GUC's "extra") */
typedef struct DatabaseList
{
	int	 n;
	char names[MAX_SWEEPERS][NAMEDATALEN];
} DatabaseList;

static const DatabaseList *databases_to_sweep = NULL;

PGDLLEXPORT void checkout_launcher_main(Datum arg);
PGDLLEXPORT void checkout_sweeper_main(Datum arg);

/* ---- checkout.database ---- */

/*
 * A comma list of database names as SplitIdentifierString reads it (unquoted
 * names are folded to lower case), each shorter than NAMEDATALEN, none twice,
 * at most MAX_SWEEPERS of them.  The parsed list becomes the GUC's extra.
 */
bool
check_database_list(char **newval, void **extra, GucSource source)
{
	char		 *as_written = pstrdup(*newval);
	char		 *folded = pstrdup(*newval);
	List		 *spellings;
	List		 *names;
	ListCell	 *lc;
	DatabaseList *parsed;
	int			  i;

	/* SplitGUCList neither folds nor truncates: the lengths as written */
	if (!SplitGUCList(as_written, ',', &spellings) ||
		!SplitIdentifierString(folded, ',', &names))
	{
		GUC_check_errdetail(
			"List syntax is invalid: write database names separated by commas, "
			"in double quotes when a name holds a comma, a space, a quote or capitals.");
		return false;
	}
	foreach(lc, spellings)
	{
		const char *name = lfirst(lc);

		if (name[0] == '\0')
		{
			GUC_check_errdetail("A database name in the list is empty.");
			return false;
		}
		if (strlen(name) >= NAMEDATALEN)
		{
			GUC_check_errdetail(
				"Database name \"%s\" is too long (%zu bytes, the maximum is %d).",
				name, strlen(name), NAMEDATALEN - 1);
			return false;
		}
	}
	if (list_length(names) > MAX_SWEEPERS)
	{
		GUC_check_errdetail("The list names %d databases; at most %d can be swept.",
							list_length(names), MAX_SWEEPERS);
		return false;
	}

	parsed = malloc(sizeof(DatabaseList));
	if (parsed == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		GUC_check_errmsg("out of memory");
		return false;
	}
	parsed->n = 0;
	foreach(lc, names)
	{
		const char *name = lfirst(lc);

		for (i = 0; i < parsed->n; i++)
		{
			if (strcmp(parsed->names[i], name) == 0)
			{
				GUC_check_errdetail("Database \"%s\" is listed more than once.",
									name);
				free(parsed);
				return false;
			}
		}
		strlcpy(parsed->names[parsed->n++], name, NAMEDATALEN);
	}
	list_free(spellings);
	list_free(names);
	pfree(as_written);
	pfree(folded);
	*extra = parsed;
	return true;
}

void
assign_database_list(const char *newval, void *extra)
{
	databases_to_sweep = extra;
}

/* ---- the launcher's registration ---- */

void
checkout_worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
					   BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = LAUNCHER_RESTART_S;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "checkout");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "checkout_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "checkout launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "checkout launcher");
	RegisterBackgroundWorker(&worker);
}

/* ---- the sweeper ---- */

/*
 * Runs fn in its own transaction with SPI and a snapshot; returns its result.
 */
static bool
in_transaction(bool (*fn)(void *), void *arg)
{
	bool result;
	int	 spi_state;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	spi_state = checkout_spi_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	result = fn(arg);
	checkout_spi_finish(spi_state);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	return result;
}

/*
 * Between two transactions, and each turn of the loop: signals, new settings.
 */
static void
check_interrupts_and_reload(void)
{
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

static bool
extension_ready(void *arg)
{
	return OidIsValid(get_extension_oid("checkout", true));
}

static bool
expire_batch(void *arg)
{
	*(int *) arg = checkout_expire_due(SWEEP_BATCH);
	return true;
}

static bool
prune_batch(void *arg)
{
	*(int64 *) arg = checkout_prune_events(PRUNE_BATCH);
	return true;
}

/* Rebalances the striped skus; false when none is striped. */
static bool
rebalance_stripes(void *arg)
{
	int striped;

	(void) checkout_rebalance_all(&striped);
	return striped > 0;
}

static bool
find_next_due(void *arg)
{
	return checkout_next_due((TimestampTz *) arg);
}

/* Expires every lock due now, a batch per transaction; returns how many. */
static int
expire_due_locks(void)
{
	int n;
	int total = 0;

	/* a reload between batches may have fenced the server read-only */
	while (!DefaultXactReadOnly)
	{
		in_transaction(expire_batch, &n);
		total += n;
		check_interrupts_and_reload();
		if (n < SWEEP_BATCH)
			break;
	}
	return total;
}

static void
sweep(void)
{
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz swept_until = started; /* deadlines up to here are served */
	TimestampTz next_due = DT_NOEND;
	int			expired;
	int64		pruned;

	pgstat_report_activity(STATE_RUNNING, "checkout sweep");
	expired = expire_due_locks();

	/*
	 * Prune until nothing old is left (the table must not outgrow the
	 * pruning), a batch per transaction so a backlog holds no long
	 * transaction; a deadline that passes meanwhile is served between batches.
	 */
	while (!DefaultXactReadOnly)
	{
		TimestampTz now;
		TimestampTz wake_at;

		in_transaction(prune_batch, &pruned);
		check_interrupts_and_reload();
		now = GetCurrentTimestamp();
		wake_at = wakeup_posted();
		if (wake_at <= now && wake_at > swept_until)
		{
			swept_until = now;
			expired += expire_due_locks();
		}
		if (pruned < PRUNE_BATCH)
			break;
	}

	if (!in_transaction(find_next_due, &next_due))
		next_due = DT_NOEND;
	if (expired > 0)
		elog(DEBUG1, "checkout sweeper expired %d locks", expired);

	wakeup_swept(swept_until, next_due);
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
checkout_sweeper_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	SweeperArgs args;
	TimestampTz last_sweep = 0;
	TimestampTz last_rebalance = 0;
	bool		striping = false; /* a sku was striped at the last rebalance */
	bool		ready = false;
	bool		paused = false;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	wakeup_slot_attach(args.slot);
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("checkout sweeper");
	/* runs as superuser: never resolve names through a user schema */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz wake_at;
		TimestampTz interval_due;
		TimestampTz rebalance_due;
		long		sleep_ms;

		check_interrupts_and_reload();
		if (!ready)
		{
			ready = in_transaction(extension_ready, NULL);
			if (ready)
			{
				ereport(LOG,
						(errmsg("checkout sweeper started for database \"%s\"",
								args.dbname)));
				last_sweep = 0; /* sweep at once */
			}
		}

		/*
		 * default_transaction_read_only fences a primary (pg_auto_failover
		 * sets it while it promotes or demotes a node): a sweep would only
		 * fail with 25006, so wait for the reload that lifts the fence, then
		 * sweep at once — locks may have fallen due meanwhile.
		 */
		if (DefaultXactReadOnly != paused)
		{
			paused = DefaultXactReadOnly;
			ereport(LOG,
					(errmsg(paused
								? "checkout sweeper for database \"%s\" paused: default_transaction_read_only is on"
								: "checkout sweeper for database \"%s\" resumed: default_transaction_read_only is off",
							args.dbname)));
			if (!paused)
				last_sweep = 0;
		}

		wake_at = wakeup_posted();
		interval_due =
			TimestampTzPlusMilliseconds(last_sweep,
										checkout_cleanup_interval_s * 1000L);

		if (ready && !paused && (wake_at <= now || interval_due <= now))
		{
			sweep();
			last_sweep = now;
			continue;
		}

		/*
		 * Striped skus are rebalanced every checkout.rebalance_interval; a
		 * database without one is looked at again with each sweep.
		 */
		if (checkout_rebalance_interval_ms <= 0)
			rebalance_due = DT_NOEND;
		else if (striping)
			rebalance_due =
				TimestampTzPlusMilliseconds(last_rebalance,
											checkout_rebalance_interval_ms);
		else
			rebalance_due =
				TimestampTzPlusMilliseconds(last_rebalance,
											checkout_cleanup_interval_s *
												1000L);
		if (ready && !paused && rebalance_due <= now)
		{
			pgstat_report_activity(STATE_RUNNING, "checkout rebalance");
			striping = in_transaction(rebalance_stripes, NULL);
			pgstat_report_activity(STATE_IDLE, NULL);
			last_rebalance = now;
			continue;
		}

		if (paused)
		{
			/* a reload sets the latch */
			sleep_ms = checkout_cleanup_interval_s * 1000L;
		}
		else if (!ready)
			sleep_ms = Min(RETRY_MS, checkout_cleanup_interval_s * 1000L);
		else
		{
			TimestampTz until = Min(Min(wake_at, interval_due), rebalance_due);

			sleep_ms = TimestampDifferenceMilliseconds(now, until);
			/* deadlines are microseconds; do not wake a hair early and spin */
			sleep_ms = Max(sleep_ms, 1) + 1;
		}
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---- the launcher ---- */

/*
 * Why a database has no sweeper; each is logged once until the cause changes.
 */
typedef enum StartFailure
{
	START_OK,
	START_NO_DATABASE,
	START_NO_WORKER_SLOT,
	START_STOPPED
} StartFailure;

typedef struct Target
{
	const char			   *name;
	BackgroundWorkerHandle *handle;
	TimestampTz	 tried_at; /* start attempts are at least RETRY_MS apart */
	StartFailure failure;  /* of the last attempt */
} Target;

static Target *targets = NULL;
static int	   n_targets = 0;

/*
 * The database's oid, or InvalidOid.  A plain catalog scan, as the autovacuum
 * launcher does: without a database only shared catalogs can be read.
 */
static Oid
lookup_database(const char *name)
{
	Relation	  rel;
	TableScanDesc scan;
	HeapTuple	  tup;
	Oid			  result = InvalidOid;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (strcmp(NameStr(db->datname), name) == 0 && db->datallowconn)
		{
			result = db->oid;
			break;
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return result;
}

static void
report_failure(Target *t, StartFailure why)
{
	if (why == t->failure)
		return;
	t->failure = why;
	switch (why)
	{
		case START_OK:
			break;
		case START_NO_DATABASE:
			ereport(LOG,
					(errmsg("checkout: database \"%s\" named in checkout.database does not exist or does not allow connections",
							t->name),
					 errhint("The launcher looks for it again every %d seconds.",
							 RETRY_MS / 1000)));
			break;
		case START_NO_WORKER_SLOT:
			ereport(LOG,
					(errmsg("checkout: could not start the sweeper for database \"%s\"",
							t->name),
					 errdetail("No background worker slot is free (max_worker_processes is %d).",
							   max_worker_processes),
					 errhint("Raise max_worker_processes; the launcher tries again every %d seconds.",
							 RETRY_MS / 1000)));
			break;
		case START_STOPPED:
			ereport(LOG,
					(errmsg("checkout: the sweeper for database \"%s\" stopped before it started",
							t->name),
					 errhint("More details may be in the server log; the launcher tries again every %d seconds.",
							 RETRY_MS / 1000)));
			break;
	}
}

static StartFailure
start_sweeper(Target *t, int slot, Oid dboid)
{
	BackgroundWorker worker;
	SweeperArgs		 args;
	BgwHandleStatus	 status;
	pid_t			 pid;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
					   BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART; /* the launcher restarts it */
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "checkout");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "checkout_sweeper_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "checkout sweeper %s", t->name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "checkout sweeper");
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	memset(&args, 0, sizeof(args));
	args.slot = slot;
	strlcpy(args.dbname, t->name, NAMEDATALEN);
	memcpy(worker.bgw_extra, &args, sizeof(args));
	worker.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&worker, &t->handle))
	{
		t->handle = NULL;
		return START_NO_WORKER_SLOT;
	}
	status = WaitForBackgroundWorkerStartup(t->handle, &pid);
	if (status == BGWH_POSTMASTER_DIED)
		proc_exit(1);
	if (status == BGWH_STOPPED)
	{
		pfree(t->handle);
		t->handle = NULL;
		return START_STOPPED;
	}
	return START_OK;
}

/*
 * Looks for the database and starts its sweeper; logs a new cause of failure.
 */
static void
try_start(Target *t, int slot)
{
	Oid dboid = lookup_database(t->name);

	/* the slot first, so that deadlines posted from now on are kept */
	wakeup_slot_assign(slot, dboid);
	report_failure(t, OidIsValid(dboid) ? start_sweeper(t, slot, dboid)
										: START_NO_DATABASE);
}

/*
 * The sweepers go with their launcher: a restarted launcher starts new ones.
 */
static void
stop_sweepers(int code, Datum arg)
{
	int i;

	for (i = 0; i < n_targets; i++)
		if (targets[i].handle)
			TerminateBackgroundWorker(targets[i].handle);
}

void
checkout_launcher_main(Datum arg)
{
	int i;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	n_targets = databases_to_sweep->n;
	targets = MemoryContextAllocZero(TopMemoryContext,
									 sizeof(Target) * n_targets);
	for (i = 0; i < n_targets; i++)
		targets[i].name = MemoryContextStrdup(TopMemoryContext,
											  databases_to_sweep->names[i]);
	/*
	 * before connecting: runs after the exit callbacks of the connection
	 * (LIFO)
	 */
	before_shmem_exit(stop_sweepers, (Datum) 0);
	/* no database: only the shared catalog pg_database is needed */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("checkout launcher");

	for (;;)
	{
		TimestampTz now;
		long		sleep_ms = RETRY_MS;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		now = GetCurrentTimestamp();
		for (i = 0; i < n_targets; i++)
		{
			Target *t = &targets[i];
			pid_t	pid;
			long	since_tried;

			if (t->handle)
			{
				if (GetBackgroundWorkerPid(t->handle, &pid) != BGWH_STOPPED)
					continue;
				pfree(t->handle);
				t->handle = NULL;
			}
			since_tried = TimestampDifferenceMilliseconds(t->tried_at, now);
			if (since_tried < RETRY_MS)
			{
				sleep_ms = Min(sleep_ms, RETRY_MS - since_tried);
				continue;
			}
			t->tried_at = now;
			try_start(t, i);
		}
		/* a sweeper's exit sets our latch (bgw_notify_pid) */
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
