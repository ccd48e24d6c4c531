/*
 * model.h — the data model every module shares: the phases, the lock
 * states (both in the order of their SQL enums) and a lock's row as a call
 * sees and changes it.  model.c has their names.
 */
#ifndef CHECKOUT_MODEL_H
#define CHECKOUT_MODEL_H

#include "datatype/timestamp.h"

/* values match the order of enum checkout.phase */
typedef enum CheckoutPhase
{
	/* as failed_phase: the phase after the last completed one */
	PHASE_PENDING = -1,
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

/* values match the order of enum checkout.lock_state */
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
 * in what their phase records; lifecycle.c writes the row back once per
 * call (store_lock_save).
 */
typedef struct LockRow
{
	int64		  lock_id;
	char		 *cart_id;
	char		 *session_id;
	LockState	  state;
	CheckoutPhase phase; /* last completed, PHASE_NONE right after start */
	TimestampTz	  created_at;
	TimestampTz	  expires_at;
	TimestampTz	  finished_at; /* 0 while active */
	bool		  has_total;
	int64		  total;
	char		 *order_ref;	  /* NULL until order_creation */
	char		 *auth_reference; /* NULL until payment_authorization */
	int64		  auth_amount;
	char		 *capture_reference; /* NULL until payment_capture */
	int64		  capture_amount;
	CheckoutPhase failed_phase; /* PHASE_NONE unless failed or expired */
	char		 *error_code;
	char		 *error_message;
	/*
	 * the version of the row this call holds row-locked (store.c's), or NULL
	 */
	struct RowVersion *version;
} LockRow;

extern const char	*phase_name(CheckoutPhase phase);
extern CheckoutPhase phase_from_name(const char *name);
extern const char	*lock_state_name(LockState state);
extern LockState	 lock_state_from_name(const char *name);

#endif /* CHECKOUT_MODEL_H */
