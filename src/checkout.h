/*
 * checkout.h — what the C files of the checkout extension share.
 *
 * File map (one concern each):
 *   checkout.c     module init, settings (GUCs), shared-memory hooks
 *   spi_util.c     prepared-once SPI plans, small datum helpers
 *   cart.c         parsing and validating the lines JSON of checkout_start
 *   lock.c         lock lifecycle API: start, status, extend, cancel, release
 *   phases.c       the phase table and checkout_advance / checkout_fail
 *   stock.c        the only code that changes checkout.inventory
 *   rollback.c     finishing locks: compensations in reverse phase order,
 *                  expiry (touch, cleanup function, worker: one code path)
 *   events.c       structured log lines, the events table, NOTIFY
 *   protect.c      the cart protection trigger
 *   worker.c       the launcher and per-database sweepers
 *
 * Every function here that runs SQL expects the caller to be connected to
 * SPI inside a transaction.
 */
#ifndef CHECKOUT_H
#define CHECKOUT_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

/* ---- SQLSTATEs of class KC (DESIGN.md) ---- */
#define ERRCODE_CHECKOUT_IN_PROGRESS	MAKE_SQLSTATE('K','C','0','0','1')
#define ERRCODE_CHECKOUT_LOCK_NOT_FOUND MAKE_SQLSTATE('K','C','0','0','2')
#define ERRCODE_CHECKOUT_LOCK_NOT_ACTIVE MAKE_SQLSTATE('K','C','0','0','4')
#define ERRCODE_CHECKOUT_PAYLOAD_REQUIRED MAKE_SQLSTATE('K','C','0','2','0')
#define ERRCODE_CHECKOUT_CART_LOCKED	MAKE_SQLSTATE('K','C','0','3','0')

/* Business-failure codes, stored in locks.error_code (never raised) */
#define CHECKOUT_INVALID_CART		"KC010"
#define CHECKOUT_INSUFFICIENT_STOCK	"KC011"
#define CHECKOUT_PRICE_DRIFT		"KC012"
#define CHECKOUT_PAYMENT_MISMATCH	"KC013"
#define CHECKOUT_APP_FAILURE		"KC014"
#define CHECKOUT_EXPIRED			"KC015"

/* ---- settings (checkout.c) ---- */
extern int	checkout_ttl_s;
extern int	checkout_max_ttl_s;
extern int	checkout_cleanup_interval_s;
extern int	checkout_event_retention_s;
extern double checkout_price_drift_tolerance;
extern bool checkout_prevent_concurrent;
extern bool checkout_cart_protection;
extern bool checkout_logging;
extern int	checkout_log_event_mask;	/* EVC_* bits, from checkout.log_events */
extern int	checkout_log_destination;	/* LOG_DEST_* */
extern char *checkout_payment_gateway;
extern char *checkout_notify_channel;

/* ---- phases (phases.c); values match the enum's order ---- */
typedef enum CheckoutPhase
{
	PHASE_PENDING = -1,			/* as failed_phase: the phase after the last completed */
	PHASE_NONE = 0,
	PHASE_CART_VALIDATION,
	PHASE_INVENTORY_RESERVATION,
	PHASE_PRICE_LOCK,
	PHASE_PAYMENT_AUTHORIZATION,
	PHASE_ORDER_CREATION,
	PHASE_PAYMENT_CAPTURE,
	PHASE_STOCK_COMMIT
} CheckoutPhase;

#define PHASE_LAST PHASE_STOCK_COMMIT

extern const char *phase_name(CheckoutPhase phase);
extern CheckoutPhase phase_from_name(const char *name);

/* ---- SPI helpers (spi_util.c) ---- */
extern SPIPlanPtr checkout_plan(SPIPlanPtr *cache, const char *sql,
								int nargs, const Oid *argtypes);
extern int	checkout_exec(SPIPlanPtr *cache, const char *sql, int nargs,
						  const Oid *argtypes, Datum *values, const char *nulls,
						  bool read_only, long count);
extern char *checkout_text_cell(SPITupleTable *tt, int row, int col);	/* NULL for SQL NULL */
extern int64 checkout_int8_cell(SPITupleTable *tt, int row, int col, bool *isnull);
extern bool checkout_bool_cell(SPITupleTable *tt, int row, int col);
extern Datum checkout_int8_array(const int64 *values, int n);

/* ---- input JSON (cart.c) ---- */
typedef struct CartLines
{
	int			n;
	char	  **line_ids;
	char	  **skus;
	int64	   *quantities;
	int64	   *prices;
	int64		total;			/* sum of price * quantity as the cart says */
} CartLines;

extern void parse_cart_lines(Jsonb *lines, CartLines *out);
extern bool json_value_int64(const JsonbValue *v, int64 *out);
extern char *json_value_text(const JsonbValue *v);
extern JsonbValue *json_object_key(JsonbContainer *obj, const char *key);

/* ---- locks (lock.c) ---- */
typedef struct LockRow
{
	int64		lock_id;
	char	   *cart_id;
	char	   *session_id;
	char	   *state;
	CheckoutPhase phase;		/* last completed phase */
	bool		overdue;		/* active and past expires_at */
	bool		captured;
	bool		has_total;
	int64		total;
	bool		has_auth;
	int64		auth_amount;
	char	   *order_ref;
} LockRow;

extern void require_arg(FunctionCallInfo fcinfo, int argno, const char *name);
extern char *require_text_arg(FunctionCallInfo fcinfo, int argno, const char *name);
extern bool lock_fetch_for_update(int64 lock_id, LockRow *row);
extern void lock_for_session(int64 lock_id, const char *session_id, LockRow *row);
extern bool lock_is_active(const LockRow *row);
extern void raise_not_active(const LockRow *row);
extern bool expire_if_overdue(LockRow *row);
extern Datum lock_status_datum(int64 lock_id);
extern Datum end_session_lock(int64 lock_id, const char *session_id, const char *state,
							  CheckoutPhase failed_phase, const char *error_code,
							  const char *error_message);

/*
 * Sets of locks (an int8[] Datum) are what stock moves, compensations and
 * finishing work on, so that a sweep of thousands of locks costs one ledger
 * update per sku, and a single lock takes the very same path.
 */

/* ---- stock (stock.c): the only code that changes checkout.inventory ---- */
typedef struct StockShortfall
{
	char	   *sku;
	int64		wanted;
	int64		available;
	bool		unknown_sku;
} StockShortfall;

extern bool stock_reserve(int64 lock_id, const char *cart_id, StockShortfall *shortfall);
extern void stock_release(Datum lock_ids);
extern void stock_commit(Datum lock_ids);

/* ---- phases (phases.c) ---- */
typedef void (*PhaseRollbackFn) (Datum lock_ids);
extern PhaseRollbackFn phase_rollback_fn(CheckoutPhase phase);
extern void mark_phase_completed(Datum lock_ids, CheckoutPhase phase, bool rolled_forward);

/* ---- compensations and finishing (rollback.c) ---- */

extern void rollback_refund_capture(Datum lock_ids);
extern void rollback_cancel_order(Datum lock_ids);
extern void rollback_void_authorization(Datum lock_ids);
extern void rollback_release_reservations(Datum lock_ids);
extern void record_compensation(int64 lock_id, const char *cart_id, const char *kind,
								const char *reference, int64 amount);
extern void end_locks(Datum lock_ids, const char *state, CheckoutPhase failed_phase,
					  const char *error_code, const char *error_message);
extern void expire_locks(Datum lock_ids);
extern int	checkout_expire_due(int batch);
extern bool checkout_next_due(TimestampTz *next_due);
extern int64 checkout_prune_events(int batch);

/* ---- events (events.c) ---- */
#define EVC_LIFECYCLE	0x01
#define EVC_FAILURES	0x02
#define EVC_ROLLBACKS	0x04
#define EVC_PRICE_DRIFT 0x08
#define EVC_PHASES		0x10
#define EVC_STOCK		0x20
#define EVC_ALL			0x3F
#define EVC_DEFAULT		(EVC_LIFECYCLE | EVC_FAILURES | EVC_ROLLBACKS | EVC_PRICE_DRIFT)

#define LOG_DEST_SERVER_LOG 0
#define LOG_DEST_TABLE		1
#define LOG_DEST_BOTH		2

typedef struct CheckoutEvent
{
	StringInfoData json;		/* the object being built, without its closing brace */
	const char *name;			/* event name in the log and events table */
	const char *notify_name;	/* "event" of the NOTIFY payload; defaults to name */
	int64		lock_id;
	const char *cart_id;
	int			category;
	bool		notify;			/* also NOTIFY checkout.notify_channel */
} CheckoutEvent;

extern bool event_wanted(int category, bool notify);
extern void event_begin(CheckoutEvent *ev, int category, const char *name,
						int64 lock_id, const char *cart_id, bool notify);
extern void event_add_text(CheckoutEvent *ev, const char *key, const char *value);
extern void event_add_int(CheckoutEvent *ev, const char *key, int64 value);
extern void event_add_raw(CheckoutEvent *ev, const char *key, const char *json);
extern void event_emit(CheckoutEvent *ev);
extern void events_init(void);
extern bool check_log_events(char **newval, void **extra, GucSource source);
extern void assign_log_events(const char *newval, void *extra);

/* ---- worker (worker.c): only when preloaded; checkout_worker_wake is a no-op otherwise ---- */
extern bool check_database_list(char **newval, void **extra, GucSource source);
extern void assign_database_list(const char *newval, void *extra);
extern void checkout_worker_register(void);
extern void checkout_shmem_request(void);
extern void checkout_shmem_startup(void);
extern void checkout_worker_wake(TimestampTz expires_at);

#endif							/* CHECKOUT_H */
