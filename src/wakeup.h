/*
 * wakeup.h — the wake-up a backend gives its database's sweeper when it
 * creates a lock that falls due before the sweeper would wake (wakeup.c).
 * A backend calls wakeup_sweeper_at_commit; the launcher and the sweepers
 * (worker.c) call the rest.  Everything here lives in shared memory, which
 * exists only while the library is preloaded: without preload a backend's
 * wake-up does nothing and no launcher or sweeper runs.
 */
#ifndef CHECKOUT_WAKEUP_H
#define CHECKOUT_WAKEUP_H

#include "datatype/timestamp.h"

/* One slot per entry of checkout.database: the most sweepers there can be. */
#define WAKEUP_SLOTS 32

/* shmem_request_hook and shmem_startup_hook (checkout.c) */
extern void wakeup_shmem_request(void);
extern void wakeup_shmem_startup(void);

/* a backend that created a lock expiring at expires_at */
extern void wakeup_sweeper_at_commit(TimestampTz expires_at);

/* the launcher: slot i serves this database from now on */
extern void wakeup_slot_assign(int slot, Oid dboid);

/* a sweeper: its slot, the deadline posted there, and the end of a sweep */
extern void		   wakeup_slot_attach(int slot);
extern TimestampTz wakeup_posted(void);
extern void		   wakeup_swept(TimestampTz swept_until, TimestampTz next_due);

#endif /* CHECKOUT_WAKEUP_H */
