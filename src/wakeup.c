/*
 * wakeup.c — the shared memory through which backends wake the sweepers.
 *
 * It holds one slot per entry of checkout.database, written by the launcher
 * (the database's oid, set before its sweeper starts) and by the sweeper
 * (its latch, and the deadline it sleeps towards: wake_at).  A backend that
 * committed a lock with an earlier deadline lowers wake_at and sets the
 * latch, so the sweeper sleeps exactly until the earliest expiry, or
 * checkout.cleanup_interval, whichever is sooner.  A backend in a database
 * that is not swept finds no slot.  The slot outlives its sweeper, so a
 * deadline posted while the sweeper is (re)starting is not lost.
 *
 * The spinlock guards the slots: nothing is done while holding it but
 * reading and writing them.  checkout.c requests the memory only while the
 * library is being preloaded; a backend that loads the library later finds
 * none, and its wake-ups do nothing.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"

#include "wakeup.h"

typedef struct WakeupSlot
{
	Oid			dboid; /* InvalidOid until the launcher finds the database */
	Latch	   *latch; /* the running sweeper's, or NULL */
	TimestampTz wake_at;
} WakeupSlot;

typedef struct WakeupShared
{
	slock_t	   mutex;
	/* slot i serves the i-th name of checkout.database */
	WakeupSlot slots[WAKEUP_SLOTS];
} WakeupShared;

static WakeupShared *shared = NULL;
static WakeupSlot	*my_slot = NULL; /* a sweeper's own */

void
wakeup_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(WakeupShared)));
}

void
wakeup_shmem_startup(void)
{
	bool found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("checkout", sizeof(WakeupShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(WakeupShared));
		SpinLockInit(&shared->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* ---- a backend ---- */

static void
post_wake(TimestampTz expires_at)
{
	Latch *latch = NULL;
	int	   i;

	SpinLockAcquire(&shared->mutex);
	for (i = 0; i < WAKEUP_SLOTS; i++)
	{
		WakeupSlot *slot = &shared->slots[i];

		if (slot->dboid == MyDatabaseId)
		{
			if (expires_at < slot->wake_at)
			{
				slot->wake_at = expires_at;
				latch = slot->latch;
			}
			break;
		}
	}
	SpinLockRelease(&shared->mutex);
	if (latch)
		SetLatch(latch);
}

/*
 * The deadline is posted when the creating transaction commits, not when the
 * lock is inserted: a sweeper woken earlier would not see the lock yet, and
 * would then sleep past its deadline until checkout.cleanup_interval.
 */
static TimestampTz wake_at_commit = DT_NOEND;

static void
wakeup_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_at_commit != DT_NOEND)
				post_wake(wake_at_commit);
			wake_at_commit = DT_NOEND;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			/*
			 * a prepared transaction's locks wait for the cleanup_interval
			 * sweep
			 */
			wake_at_commit = DT_NOEND;
			break;
		default:
			break;
	}
}

/*
 * Called by a backend that just created a lock expiring at expires_at: the
 * sweeper of its database wakes by then, once the transaction commits.
 */
void
wakeup_sweeper_at_commit(TimestampTz expires_at)
{
	static bool registered = false;

	if (shared == NULL)
		return; /* not preloaded: no sweeper to wake */
	if (!registered)
	{
		RegisterXactCallback(wakeup_xact_callback, NULL);
		registered = true;
	}
	wake_at_commit = Min(wake_at_commit, expires_at);
}

/* ---- the launcher ---- */

/* Points slot i at the database; a new database starts with no deadline. */
void
wakeup_slot_assign(int slot, Oid dboid)
{
	SpinLockAcquire(&shared->mutex);
	if (shared->slots[slot].dboid != dboid)
	{
		shared->slots[slot].dboid = dboid;
		shared->slots[slot].wake_at = DT_NOEND;
	}
	SpinLockRelease(&shared->mutex);
}

/* ---- a sweeper ---- */

static void
detach_slot(int code, Datum arg)
{
	SpinLockAcquire(&shared->mutex);
	my_slot->latch = NULL;
	SpinLockRelease(&shared->mutex);
}

/*
 * The sweeper's latch goes into its slot, whose database the launcher set
 * before starting it, until the sweeper exits.
 */
void
wakeup_slot_attach(int slot)
{
	my_slot = &shared->slots[slot];
	SpinLockAcquire(&shared->mutex);
	my_slot->latch = MyLatch;
	SpinLockRelease(&shared->mutex);
	before_shmem_exit(detach_slot, (Datum) 0);
}

/* The earliest deadline posted to the sweeper's slot. */
TimestampTz
wakeup_posted(void)
{
	TimestampTz wake_at;

	SpinLockAcquire(&shared->mutex);
	wake_at = my_slot->wake_at;
	SpinLockRelease(&shared->mutex);
	return wake_at;
}

/*
 * A sweep served every deadline up to swept_until and found next_due the
 * earliest left: a deadline a backend posted during the sweep is kept, the
 * ones it served are dropped.
 */
void
wakeup_swept(TimestampTz swept_until, TimestampTz next_due)
{
	SpinLockAcquire(&shared->mutex);
	if (my_slot->wake_at <= swept_until)
		my_slot->wake_at = next_due;
	else
		my_slot->wake_at = Min(my_slot->wake_at, next_due);
	SpinLockRelease(&shared->mutex);
}
