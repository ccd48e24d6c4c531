/*
 * lifecycle.h — a lock's life: its creation, and the only code that moves it
 * out of `active` (completed, failed, expired, cancelled).
 */
#ifndef CHECKOUT_LIFECYCLE_H
#define CHECKOUT_LIFECYCLE_H

#include "access/htup.h"
#include "access/tupdesc.h"

#include "cart.h"
#include "model.h"

extern bool		 lock_overdue(const LockRow *row);
extern LockState lock_effective_state(const LockRow *row);
extern void		 raise_lock_not_found(int64 lock_id);
extern void		 raise_not_active(const LockRow *row);

extern bool lock_create(const char *cart_id, const char *session_id,
						const char *idempotency_key, double ttl_secs,
						const CartLines *cart, LockRow *row);
extern void lock_extend(LockRow *row, double by_secs);

/* ---- ending ---- */
extern void lock_mark_completed(LockRow *row);
extern void lock_completed_event(const LockRow *row, bool rolled_forward);
extern void locks_complete(LockRow *const *rows, int n, bool rolled_forward);
extern void locks_end(LockRow *const *rows, int n, LockState state,
					  CheckoutPhase failed_phase, const char *error_code,
					  const char *error_message);

/*
 * What one API call did to the lock it returns (the status row's last
 * fields): a retry gets the same row otherwise.
 */
typedef struct CallReport
{
	bool		  created;		/* checkout_start made the lock */
	CheckoutPhase phase_before; /* the lock's phase when the call found it */
	bool		  was_active;	/* and whether it was active then */
} CallReport;

/* checkout.status: ten fields in 0.2.0, thirteen from 0.3.0 */
#define STATUS_FIELDS 13

extern void		 call_report_begin(CallReport *report, const LockRow *row);
extern HeapTuple lock_status_tuple(const LockRow	*row,
								   const CallReport *report, TupleDesc desc);

#endif /* CHECKOUT_LIFECYCLE_H */
