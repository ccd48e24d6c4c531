/*
 * events.h — the event catalogue and its three outputs: `[checkout] <event>
 * {json}` lines in the server log, rows of checkout.events, and NOTIFY
 * wake-ups for events the application must act on.
 */
#ifndef CHECKOUT_EVENTS_H
#define CHECKOUT_EVENTS_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/guc.h"

/* categories of checkout.log_events */
#define EVC_LIFECYCLE	0x01
#define EVC_FAILURES	0x02
#define EVC_ROLLBACKS	0x04
#define EVC_PRICE_DRIFT 0x08
#define EVC_PHASES		0x10
#define EVC_STOCK		0x20

#define LOG_DEST_SERVER_LOG 0
#define LOG_DEST_TABLE		1
#define LOG_DEST_BOTH		2

/* the catalogue: one entry per event (events.c has names and categories) */
typedef enum EventKind
{
	EV_STARTED,
	EV_EXTENDED,
	EV_PHASE_COMPLETED,
	EV_PRICE_LOCKED,
	EV_PRICE_DRIFT,
	EV_STOCK_RESERVED,
	EV_STOCK_RELEASED,
	EV_STOCK_COMMITTED,
	EV_ROLLBACK_STARTED,
	EV_ROLLBACK_STEP,
	EV_PAYMENT_REFUSED,
	EV_COMPLETED,
	EV_FAILED,
	EV_EXPIRED,
	EV_CANCELLED,
	EV_COUNT
} EventKind;

typedef struct CheckoutEvent
{
	EventKind	   kind;
	/* the object being built, without its closing brace */
	StringInfoData json;
	int64		   lock_id;
	const char	  *cart_id;
	const char	  *notify_as; /* NOTIFY with this "event" name, or NULL */
	int64		   compensation_id; /* carried by the NOTIFY when > 0 */
} CheckoutEvent;

/* true when emitting kind would write anything: test before building one */
extern bool event_wanted(EventKind kind);
extern void event_begin(CheckoutEvent *ev, EventKind kind, int64 lock_id,
						const char *cart_id);
extern void event_add_text(CheckoutEvent *ev, const char *key,
						   const char *value);
extern void event_add_int(CheckoutEvent *ev, const char *key, int64 value);
extern void event_add_raw(CheckoutEvent *ev, const char *key,
						  const char *json);
extern void event_add_time(CheckoutEvent *ev, const char *key, TimestampTz t);
extern void event_notify_compensation(CheckoutEvent *ev, const char *kind,
									  int64 compensation_id);
extern void event_emit(CheckoutEvent *ev);
extern void events_flush(void);
extern bool events_held(void);
extern void events_hold(void);
extern void events_release(void);
extern void events_discard(void);

extern int64 checkout_prune_events(int batch);

extern void		   events_init(void);
extern const char *log_events_default(void);
extern bool check_log_events(char **newval, void **extra, GucSource source);
extern void assign_log_events(const char *newval, void *extra);
extern const char *notify_events_default(void);
extern bool check_notify_events(char **newval, void **extra, GucSource source);
extern void assign_notify_events(const char *newval, void *extra);

#endif /* CHECKOUT_EVENTS_H */
