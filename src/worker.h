/*
 * worker.h — the background workers that expire abandoned checkouts, and
 * the wake-up a backend gives them when it creates a lock.
 */
#ifndef CHECKOUT_WORKER_H
#define CHECKOUT_WORKER_H

#include "checkout.h"

extern void checkout_worker_register(void);
extern void checkout_shmem_request(void);
extern void checkout_shmem_startup(void);
extern void checkout_worker_wake(TimestampTz expires_at);

#endif							/* CHECKOUT_WORKER_H */
