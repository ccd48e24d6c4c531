/*
 * lifecycle.h — a lock's life: reading and writing its row, and the only
 * code that moves it out of `active` (completed, failed, expired, cancelled).
 */
#ifndef CHECKOUT_LIFECYCLE_H
#define CHECKOUT_LIFECYCLE_H

#include "checkout.h"

#include "access/htup.h"
#include "access/tupdesc.h"

#include "cart.h"

extern const char *lock_state_name(LockState state);

/* ---- reading ---- */
extern bool lock_fetch(int64 lock_id, const char *session_id, LockRow *row);
extern bool lock_read(int64 lock_id, const char *session_id, LockRow *row);
extern bool lock_fetch_by_key(const char *session_id, const char *idempotency_key, LockRow *row);
extern int	lock_fetch_cart(const char *cart_id, LockRow **rows);
extern int	lock_fetch_due(int batch, LockRow **rows);
extern bool lock_next_due(TimestampTz *next_due);
extern bool lock_overdue(const LockRow *row);
extern LockState lock_effective_state(const LockRow *row);
extern void raise_lock_not_found(int64 lock_id);
extern void raise_not_active(const LockRow *row);

/* ---- writing ---- */
extern bool lock_create(const char *cart_id, const char *session_id, const char *idempotency_key,
						double ttl_secs, const CartLines *cart, LockRow *row);
extern void lock_save(LockRow *row);
extern void lock_extend(LockRow *row, double by_secs);

/* ---- ending ---- */
extern void lock_mark_completed(LockRow *row);
extern void lock_completed_event(const LockRow *row, bool rolled_forward);
extern void locks_complete(LockRow *const *rows, int n, bool rolled_forward);
extern void locks_end(LockRow *const *rows, int n, LockState state, CheckoutPhase failed_phase,
					  const char *error_code, const char *error_message);

extern HeapTuple lock_status_tuple(const LockRow *row, TupleDesc desc);

#endif							/* CHECKOUT_LIFECYCLE_H */
