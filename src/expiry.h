/*
 * expiry.h — what happens to overdue locks: the policy (roll back, or roll
 * forward when paid), expiry on touch, the sweep batch the worker and
 * checkout_cleanup_expired() run, and the next deadline.
 */
#ifndef CHECKOUT_EXPIRY_H
#define CHECKOUT_EXPIRY_H

#include "model.h"

extern bool expire_if_overdue(LockRow *row);
extern void expire_locks(LockRow *const *rows, int n);
extern int	checkout_expire_due(int batch);
extern bool checkout_next_due(TimestampTz *next_due);

#endif /* CHECKOUT_EXPIRY_H */
