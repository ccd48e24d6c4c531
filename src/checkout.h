/*
 * checkout.h — what every module of the checkout extension shares: the
 * SQLSTATEs and the settings.  The data model is in model.h; no functions
 * live here.
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
extern bool checkout_direct_access;
extern bool checkout_logging;
extern int	checkout_log_event_mask;	/* EVC_* bits, from checkout.log_events */
extern int	checkout_log_destination;	/* LOG_DEST_* */
extern int	checkout_notify_event_mask; /* NTF_* bits (events.c), from checkout.notify_events */
extern char *checkout_payment_gateway;
extern char *checkout_notify_channel;

#endif							/* CHECKOUT_H */
