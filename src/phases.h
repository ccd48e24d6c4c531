/*
 * phases.h — the phase state machine's table: each phase's name, payload
 * need, run function and compensation, side by side.
 */
#ifndef CHECKOUT_PHASES_H
#define CHECKOUT_PHASES_H

#include "cart.h"
#include "model.h"
#include "stock.h"

typedef enum PayloadNeed
{
	PAYLOAD_NONE,	  /* ignores the payload */
	PAYLOAD_OPTIONAL, /* order_creation: {"order_ref"} or nothing */
	PAYLOAD_PAYMENT	  /* needs {"reference", "amount"} */
} PayloadNeed;

/* What one checkout_advance call works with. */
typedef struct PhaseContext
{
	LockRow		   *lock;	   /* run functions record their results here */
	PaymentPayload *payment;   /* NULL when absent or already used this call */
	char		   *order_ref; /* the application's own order, or NULL */
	CartStock *cart; /* loaded (and its stock rows row-locked) once per call */
	/* non-NULL: the stock rows are only read, the reservation written late */
	StockReservation *late;
	/* set by a run function that returns false (a business failure) */
	const char		 *error_code;
	char			 *error_message;
} PhaseContext;

/*
 * A run function decides with reads under the row locks before it writes,
 * so a business failure (false) leaves nothing of its phase behind but its
 * audit trail (price snapshots, the compensation of a refused payment).
 * A compensation undoes its phase for every lock given (all of which
 * completed it).
 */
typedef struct PhaseDef
{
	CheckoutPhase phase;
	PayloadNeed	  payload;
	bool (*run)(PhaseContext *ctx);
	void (*compensate)(LockRow *const *locks, int n);
} PhaseDef;

extern const PhaseDef *phase_def(CheckoutPhase phase);
extern void phase_completed_event(const LockRow *lock, CheckoutPhase phase);

#endif /* CHECKOUT_PHASES_H */
