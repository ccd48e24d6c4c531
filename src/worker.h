/*
 * worker.h — the background workers that expire abandoned checkouts
 * (worker.c): the launcher's registration and the checkout.database
 * setting it reads.  Used only while the library is preloaded.
 */
#ifndef CHECKOUT_WORKER_H
#define CHECKOUT_WORKER_H

#include "utils/guc.h"

/* checkout.database */
extern bool check_database_list(char **newval, void **extra, GucSource source);
extern void assign_database_list(const char *newval, void *extra);

extern void checkout_worker_register(void);

#endif /* CHECKOUT_WORKER_H */
