/*
 * errors.h — what the extension answers a caller with: the SQLSTATEs of
 * class KC that it raises, the business-failure codes it stores in
 * checkout.locks.error_code, and the input limits past which an argument is
 * refused with 22023.  Only macros: any module may include it.
 */
#ifndef CHECKOUT_ERRORS_H
#define CHECKOUT_ERRORS_H

/* ---- SQLSTATEs of class KC (docs/user-guide.md, "Error codes") ---- */
#define ERRCODE_CHECKOUT_IN_PROGRESS	 MAKE_SQLSTATE('K', 'C', '0', '0', '1')
#define ERRCODE_CHECKOUT_LOCK_NOT_FOUND	 MAKE_SQLSTATE('K', 'C', '0', '0', '2')
#define ERRCODE_CHECKOUT_LOCK_NOT_ACTIVE MAKE_SQLSTATE('K', 'C', '0', '0', '4')
#define ERRCODE_CHECKOUT_PAYLOAD_REQUIRED \
	MAKE_SQLSTATE('K', 'C', '0', '2', '0')
#define ERRCODE_CHECKOUT_CART_LOCKED MAKE_SQLSTATE('K', 'C', '0', '3', '0')

/* Business-failure codes, stored in locks.error_code (never raised) */
#define CHECKOUT_INVALID_CART		"KC010"
#define CHECKOUT_INSUFFICIENT_STOCK "KC011"
#define CHECKOUT_PRICE_DRIFT		"KC012"
#define CHECKOUT_PAYMENT_MISMATCH	"KC013"
#define CHECKOUT_APP_FAILURE		"KC014"
#define CHECKOUT_EXPIRED			"KC015"

/*
 * Longest identifier (cart_id, session_id, sku, line_id, keys, references), in
 * bytes
 */
#define CHECKOUT_MAX_IDENTIFIER 255
/*
 * Longest free text (reasons of checkout_fail and checkout_release), in bytes
 */
#define CHECKOUT_MAX_REASON 1000
/* Largest payment metadata object, as JSON text, in bytes */
#define CHECKOUT_MAX_METADATA 4096

#endif /* CHECKOUT_ERRORS_H */
