/*
 * worker.h — the background workers that expire abandoned checkouts, and
 * the wake-up a backend gives them when it creates a lock.  All but
 * checkout_worker_wake is used only while the library is preloaded; without
 * preload checkout_worker_wake does nothing.
 */
#ifndef CHECKOUT_WORKER_H
#define CHECKOUT_WORKER_H

#include "checkout.h"

#include "utils/guc.h"

/* checkout.database */
extern bool check_database_list(char **newval, void **extra, GucSource source);
extern void assign_database_list(const char *newval, void *extra);

extern void checkout_worker_register(void);
extern void checkout_shmem_request(void);
extern void checkout_shmem_startup(void);
extern void checkout_worker_wake(TimestampTz expires_at);

#endif							/* CHECKOUT_WORKER_H */
