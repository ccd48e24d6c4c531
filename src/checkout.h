/*
 * checkout.h — what every module of the checkout extension shares: the
 * SQLSTATEs, the settings, and the two enums of the data model (phases and
 * lock states) with the in-memory lock row.  No functions live here; each
 * module has its own header.
 *
 * Module chain (each file calls only those to its left):
 *
 *   util → cart → events → stock → phases → lifecycle → expiry → worker
 *                                                         ↑
 *                        api.c, protect.c (the SQL-callable functions)
 *
 * Every function that runs SQL expects the caller to be connected to SPI
 * inside a transaction.
 */
#ifndef CHECKOUT_H
#define CHECKOUT_H

#include "postgres.h"

#include "storage/itemptr.h"
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

/* Longest identifier (cart_id, session_id, sku, line_id, keys, references), in bytes */
#define CHECKOUT_MAX_IDENTIFIER 255
/* Longest free text (reasons of checkout_fail and checkout_release), in bytes */
#define CHECKOUT_MAX_REASON		1000
/* Largest payment metadata object, as JSON text, in bytes */
#define CHECKOUT_MAX_METADATA	4096

/* ---- settings (checkout.c) ---- */
extern int	checkout_ttl_s;
extern int	checkout_max_ttl_s;
extern int	checkout_max_lines;
extern int	checkout_cleanup_interval_s;
extern int	checkout_event_retention_s;
extern double checkout_price_drift_tolerance;
extern bool checkout_prevent_concurrent;
extern bool checkout_cart_protection;
extern bool checkout_logging;
extern int	checkout_log_event_mask;	/* EVC_* bits, from checkout.log_events */
extern int	checkout_log_destination;	/* LOG_DEST_* */
extern int	checkout_notify_event_mask; /* NTF_* bits (events.c), from checkout.notify_events */
extern char *checkout_payment_gateway;
extern char *checkout_notify_channel;

/* ---- phases: values match the order of enum checkout.phase ---- */
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

/* ---- lock states: values match the order of enum checkout.lock_state ---- */
typedef enum LockState
{
	LOCK_ACTIVE,
	LOCK_COMPLETED,
	LOCK_FAILED,
	LOCK_EXPIRED,
	LOCK_CANCELLED
} LockState;

/*
 * A row of checkout.locks as a call sees and changes it.  Phase runners fill
 * in what their phase records; lifecycle.c is the only code that writes the
 * row back (lock_save), once per call.
 */
typedef struct LockRow
{
	int64		lock_id;
	char	   *cart_id;
	char	   *session_id;
	LockState	state;
	CheckoutPhase phase;		/* last completed, PHASE_NONE right after start */
	TimestampTz created_at;
	TimestampTz expires_at;
	TimestampTz finished_at;	/* 0 while active */
	bool		has_total;
	int64		total;
	char	   *order_ref;		/* NULL until order_creation */
	char	   *auth_reference; /* NULL until payment_authorization */
	int64		auth_amount;
	char	   *capture_reference;	/* NULL until payment_capture */
	int64		capture_amount;
	CheckoutPhase failed_phase; /* PHASE_NONE unless failed or expired */
	char	   *error_code;
	char	   *error_message;
	/* the version this call holds locked (lock_fetch) and writes over; or invalid */
	ItemPointerData tid;
} LockRow;

#endif							/* CHECKOUT_H */
