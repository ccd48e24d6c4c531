/*
 * expiry.c — overdue locks.
 *
 * An active lock past expires_at is expired with rollback — on touch (any
 * API call on it), by checkout_cleanup_expired() and by the background
 * worker, all through expire_locks().  Once its payment was captured it rolls
 * forward instead (lock_effective_state): the customer has paid, so its stock
 * is sold and it completes.
 *
 * Callers hold the locks they pass row-locked (FOR UPDATE, or FOR UPDATE
 * SKIP LOCKED in a sweep), so no lock is ended twice.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "errors.h"
#include "events.h"
#include "expiry.h"
#include "lifecycle.h"
#include "phases.h"
#include "stock.h"
#include "store.h"
#include "util.h"

PG_FUNCTION_INFO_V1(checkout_cleanup_expired);

void
expire_locks(LockRow *const *rows, int n)
{
	LockRow **paid = palloc(sizeof(LockRow *) * Max(n, 1));
	LockRow **unpaid = palloc(sizeof(LockRow *) * Max(n, 1));
	int		  n_paid = 0;
	int		  n_unpaid = 0;
	int		  i;

	for (i = 0; i < n; i++)
	{
		if (lock_effective_state(rows[i]) == LOCK_COMPLETED)
			paid[n_paid++] = rows[i];
		else
			unpaid[n_unpaid++] = rows[i];
	}
	if (n_paid > 0 && n_unpaid > 0)
		stock_rowlock_held(rows, n);
	if (n_paid > 0)
	{
		stock_commit(paid, n_paid);
		for (i = 0; i < n_paid; i++)
		{
			paid[i]->phase = PHASE_STOCK_COMMIT;
			phase_completed_event(paid[i], PHASE_STOCK_COMMIT);
		}
		locks_complete(paid, n_paid, true);
	}
	if (n_unpaid > 0)
		locks_end(unpaid, n_unpaid, LOCK_EXPIRED, PHASE_PENDING,
				  CHECKOUT_EXPIRED, "checkout expired before it completed");
}

/*
 * Expiry on touch: true when the (row-locked) lock was overdue and is now
 * ended.
 */
bool
expire_if_overdue(LockRow *row)
{
	if (!lock_overdue(row))
		return false;
	expire_locks(&row, 1);
	return true;
}

/* One sweep batch; returns how many locks it ended. */
int
checkout_expire_due(int batch)
{
	LockRow	 *rows;
	LockRow **ptrs;
	int		  n = store_locks_due(batch, &rows);
	int		  i;

	if (n == 0)
		return 0;
	ptrs = palloc(sizeof(LockRow *) * n);
	for (i = 0; i < n; i++)
		ptrs[i] = &rows[i];
	expire_locks(ptrs, n);
	events_flush();
	return n;
}

bool
checkout_next_due(TimestampTz *next_due)
{
	return store_next_due(next_due);
}

Datum
checkout_cleanup_expired(PG_FUNCTION_ARGS)
{
	int batch;
	int n;
	int spi_state;

	require_arg(fcinfo, 0, "batch");
	batch = PG_GETARG_INT32(0);
	if (batch < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("batch must be at least 1")));
	spi_state = checkout_spi_connect();
	n = checkout_expire_due(batch);
	checkout_spi_finish(spi_state);
	PG_RETURN_INT32(n);
}
