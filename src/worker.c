/*
 * worker.c — the background workers that expire abandoned checkouts.
 *
 * A launcher (static worker, started once recovery has finished, so never on
 * a hot standby) reads checkout.database and starts one sweeper per existing
 * database; databases that do not exist yet are looked for again every
 * RETRY_MS, quietly.  A sweeper expires due locks in batches through
 * checkout_expire_due() — the same code path as checkout_cleanup_expired() —
 * each batch in its own transaction.
 *
 * Shared memory holds one slot per sweeper: its database, its latch and the
 * deadline it sleeps towards (wake_at).  A backend creating a lock with an
 * earlier deadline lowers wake_at and sets the latch (checkout_worker_wake),
 * so the sweeper sleeps exactly until the earliest expiry, or
 * checkout.cleanup_interval, whichever is sooner.  The spinlock guards the
 * slots; nothing is done while holding it but reading and writing them.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

#include "events.h"
#include "expiry.h"
#include "worker.h"

#define MAX_SWEEPERS 32
#define SWEEP_BATCH 1000
#define RETRY_MS 10000			/* looking again for a database or the extension */

typedef struct SweeperSlot
{
	Oid			dboid;
	Latch	   *latch;
	TimestampTz wake_at;
} SweeperSlot;

typedef struct CheckoutShared
{
	slock_t		mutex;
	SweeperSlot slots[MAX_SWEEPERS];
} CheckoutShared;

static CheckoutShared *shared = NULL;
static SweeperSlot *my_slot = NULL;

PGDLLEXPORT void checkout_launcher_main(Datum arg);
PGDLLEXPORT void checkout_sweeper_main(Datum arg);

void
checkout_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(CheckoutShared)));
}

void
checkout_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("checkout", sizeof(CheckoutShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(CheckoutShared));
		SpinLockInit(&shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
checkout_worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "checkout");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "checkout_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "checkout launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "checkout launcher");
	RegisterBackgroundWorker(&worker);
}

/*
 * The slot of a database, created if absent; NULL when all are taken.  A slot
 * outlives its sweeper, so a deadline posted while the sweeper is (re)starting
 * is not lost.  Caller holds the spinlock.
 */
static SweeperSlot *
slot_for_database(Oid dboid)
{
	SweeperSlot *free_slot = NULL;
	int			i;

	for (i = 0; i < MAX_SWEEPERS; i++)
	{
		if (shared->slots[i].dboid == dboid)
			return &shared->slots[i];
		if (free_slot == NULL && shared->slots[i].dboid == InvalidOid)
			free_slot = &shared->slots[i];
	}
	if (free_slot)
	{
		free_slot->dboid = dboid;
		free_slot->latch = NULL;
		free_slot->wake_at = DT_NOEND;
	}
	return free_slot;
}

/* Called by a backend that just created a lock expiring at expires_at. */
void
checkout_worker_wake(TimestampTz expires_at)
{
	SweeperSlot *slot;
	Latch	   *latch = NULL;

	if (shared == NULL)
		return;					/* not preloaded: no worker to wake */
	SpinLockAcquire(&shared->mutex);
	slot = slot_for_database(MyDatabaseId);
	if (slot && expires_at < slot->wake_at)
	{
		slot->wake_at = expires_at;
		latch = slot->latch;
	}
	SpinLockRelease(&shared->mutex);
	if (latch)
		SetLatch(latch);
}

/* ---- the sweeper ---- */

static void
release_slot(int code, Datum arg)
{
	SpinLockAcquire(&shared->mutex);
	my_slot->latch = NULL;
	SpinLockRelease(&shared->mutex);
}

static void
claim_slot(Oid dboid)
{
	SpinLockAcquire(&shared->mutex);
	my_slot = slot_for_database(dboid);
	if (my_slot)
		my_slot->latch = MyLatch;
	SpinLockRelease(&shared->mutex);
	if (my_slot == NULL)
		ereport(ERROR, (errmsg("checkout: more than %d databases to sweep", MAX_SWEEPERS)));
	before_shmem_exit(release_slot, (Datum) 0);
}

/* Runs fn in its own transaction with SPI and a snapshot; returns its result. */
static bool
in_transaction(bool (*fn) (void *), void *arg)
{
	bool		result;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	result = fn(arg);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	return result;
}

static bool
extension_ready(void *arg)
{
	return OidIsValid(get_extension_oid("checkout", true));
}

static bool
sweep_batch(void *arg)
{
	*(int *) arg = checkout_expire_due(SWEEP_BATCH);
	return true;
}

static bool
prune_and_find_next(void *arg)
{
	/* in batches, until nothing old is left: the table must not outgrow the pruning */
	while (checkout_prune_events(10000) == 10000)
		CHECK_FOR_INTERRUPTS();
	return checkout_next_due((TimestampTz *) arg);
}

static void
sweep(void)
{
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz next_due = DT_NOEND;
	int			n;
	int			total = 0;

	pgstat_report_activity(STATE_RUNNING, "checkout sweep");
	do
	{
		in_transaction(sweep_batch, &n);
		total += n;
		CHECK_FOR_INTERRUPTS();
	} while (n == SWEEP_BATCH);
	if (!in_transaction(prune_and_find_next, &next_due))
		next_due = DT_NOEND;
	if (total > 0)
		elog(DEBUG1, "checkout sweeper expired %d locks", total);

	/* keep a deadline a backend posted during the sweep; drop the ones it served */
	SpinLockAcquire(&shared->mutex);
	if (my_slot->wake_at <= started)
		my_slot->wake_at = next_due;
	else
		my_slot->wake_at = Min(my_slot->wake_at, next_due);
	SpinLockRelease(&shared->mutex);
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
checkout_sweeper_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	TimestampTz last_sweep = 0;
	bool		ready = false;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	claim_slot(dboid);			/* first: from now on new deadlines reach us */
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("checkout sweeper");
	/* runs as superuser: never resolve names through a user schema */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz wake_at;
		TimestampTz interval_due;
		long		sleep_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if (!ready)
		{
			ready = in_transaction(extension_ready, NULL);
			if (ready)
			{
				ereport(LOG, (errmsg("checkout sweeper started for database \"%s\"",
									 MyBgworkerEntry->bgw_extra)));
				last_sweep = 0; /* sweep at once */
			}
		}

		SpinLockAcquire(&shared->mutex);
		wake_at = my_slot->wake_at;
		SpinLockRelease(&shared->mutex);
		interval_due = TimestampTzPlusMilliseconds(last_sweep, checkout_cleanup_interval_s * 1000L);

		if (ready && (wake_at <= now || interval_due <= now))
		{
			sweep();
			last_sweep = now;
			continue;
		}

		if (!ready)
			sleep_ms = Min(RETRY_MS, checkout_cleanup_interval_s * 1000L);
		else
		{
			TimestampTz until = Min(wake_at, interval_due);

			sleep_ms = TimestampDifferenceMilliseconds(now, until);
			/* deadlines are microseconds; do not wake a hair early and spin */
			sleep_ms = Max(sleep_ms, 1) + 1;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---- the launcher ---- */

typedef struct Target
{
	char	   *name;
	BackgroundWorkerHandle *handle;
	TimestampTz tried_at;		/* restarts are at least RETRY_MS apart */
} Target;

/*
 * The database's oid, or InvalidOid.  A plain catalog scan, as the autovacuum
 * launcher does: without a database only shared catalogs can be read.
 */
static Oid
lookup_database(const char *name)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	Oid			result = InvalidOid;

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

static BackgroundWorkerHandle *
start_sweeper(const char *dbname, Oid dboid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	pid_t		pid;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;	/* the launcher restarts it */
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "checkout");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "checkout_sweeper_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "checkout sweeper %s", dbname);
	snprintf(worker.bgw_type, BGW_MAXLEN, "checkout sweeper");
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	strlcpy(worker.bgw_extra, dbname, BGW_EXTRALEN);
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return NULL;
	if (WaitForBackgroundWorkerStartup(handle, &pid) != BGWH_STARTED)
		return NULL;
	return handle;
}

void
checkout_launcher_main(Datum arg)
{
	char	   *list;
	List	   *names;
	ListCell   *lc;
	Target	   *targets;
	int			n;
	int			i;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	/* no database: only the shared catalog pg_database is needed */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("checkout launcher");

	list = pstrdup(checkout_database_list ? checkout_database_list : "");
	if (!SplitIdentifierString(list, ',', &names))
		ereport(ERROR, (errmsg("checkout.database is not a valid list of database names")));
	n = list_length(names);
	targets = palloc0(sizeof(Target) * Max(n, 1));
	i = 0;
	foreach(lc, names)
		targets[i++].name = (char *) lfirst(lc);

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		for (i = 0; i < n; i++)
		{
			pid_t		pid;
			Oid			dboid;

			if (targets[i].handle &&
				GetBackgroundWorkerPid(targets[i].handle, &pid) != BGWH_STOPPED)
				continue;
			targets[i].handle = NULL;
			if (!TimestampDifferenceExceeds(targets[i].tried_at, GetCurrentTimestamp(), RETRY_MS))
				continue;
			targets[i].tried_at = GetCurrentTimestamp();
			dboid = lookup_database(targets[i].name);
			if (OidIsValid(dboid))
				targets[i].handle = start_sweeper(targets[i].name, dboid);
		}
		/* a sweeper's exit sets our latch (bgw_notify_pid) */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 RETRY_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
