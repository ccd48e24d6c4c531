/*
 * stock.h — the stock policy: reservations, releases and sales (their rows
 * go through store.c).
 */
#ifndef CHECKOUT_STOCK_H
#define CHECKOUT_STOCK_H

#include "model.h"
#include "store.h"

/*
 * A lock's cart lines joined to the inventory, with the inventory rows
 * row-locked (in sku order) for the rest of the transaction, or only read
 * for a late reservation.  Lines whose sku is
 * missing from the inventory are not in the arrays (n_found < n_lines).
 */
typedef struct CartStock
{
	int			n_lines;
	int			n_found;
	/* per found line, ordered by sku, then line_no */
	char	  **line_ids;
	char	  **skus;
	int64	   *quantities;
	int64	   *cart_prices;
	int64	   *unit_prices; /* the sku's current price */
	LedgerRow **ledger; /* the sku's inventory row, as row-locked or read */
} CartStock;

typedef struct StockShortfall
{
	char *sku;
	int64 wanted;
	int64 available;
} StockShortfall;

/*
 * A reservation decided from rows read, not row-locked: stock_rowlock_late
 * row-locks them and checks it again there.
 */
typedef struct StockReservation
{
	int			n; /* skus, in sku order */
	char	  **skus;
	int64	   *wanted;
	int64	   *unit_prices; /* as read: a changed price means decide again */
	LedgerRow **ledger; /* the skus' inventory rows, row-locked when written */
} StockReservation;

extern void stock_load_cart(int64 lock_id, CartStock *out, bool rowlock);
extern bool stock_reserve(const LockRow *lock, CartStock *cart,
						  StockShortfall *shortfall, StockReservation *late);
extern bool stock_rowlock_late(StockReservation *res);
extern void stock_write_reservation(int64					lock_id,
									const StockReservation *res);
extern void stock_rowlock_held(LockRow *const *locks, int n);
extern void stock_release(LockRow *const *locks, int n);
extern void stock_commit(LockRow *const *locks, int n);

#endif /* CHECKOUT_STOCK_H */
