/*
 * store.h — every read, row lock and write of the extension's tables, as
 * calls named in the domain (store.c).  Whether a call goes through SQL or
 * straight to the rows (direct.c) is store.c's business: callers never know,
 * and get the same rows, errors and row locks either way.
 *
 * Words, as everywhere in the code: a "lock" is a checkout lock (a row of
 * checkout.locks, a LockRow); a call that "row-locks" takes PostgreSQL row
 * locks (FOR UPDATE, FOR NO KEY UPDATE); the "stock table lock" and the
 * "striping table lock" are PostgreSQL table locks on
 * checkout.inventory_stripes; a start's "claim" is an advisory lock.
 *
 * Every call expects SPI to be connected (checkout_spi_connect), but
 * store_lock_read, which connects itself when it needs to.
 */
#ifndef CHECKOUT_STORE_H
#define CHECKOUT_STORE_H

#include "fmgr.h"

#include "cart.h"
#include "model.h"

/* ---- locks ---- */

extern bool store_lock_fetch(int64 lock_id, const char *session_id,
							 LockRow *row);
extern bool store_lock_read(int64 lock_id, const char *session_id,
							LockRow *row);
extern bool store_lock_fetch_by_key(const char *session_id,
									const char *idempotency_key, LockRow *row);
extern int	store_locks_of_cart(const char *cart_id, LockRow **rows);
extern int	store_locks_due(int batch, LockRow **rows);
extern bool store_next_due(TimestampTz *next_due);
extern bool store_cart_has_live_lock(const char *cart_id);
extern void store_claim_start(const char *cart_id, const char *session_id,
							  const char *idempotency_key);
extern bool store_cart_has_active_lock(const char *cart_id);
extern void store_lock_insert(const char *cart_id, const char *session_id,
							  const char *idempotency_key, bool exclusive,
							  const char *gateway, double ttl_secs,
							  LockRow *row);
extern void store_lines_insert(int64 lock_id, const CartLines *cart);
extern void store_lock_save(LockRow *row);
extern bool store_lock_writes_run_user_code(void);

/* ---- a lock's cart lines and the stock ledger ---- */

typedef struct CartLine
{
	int32 line_no;
	char *line_id;
	char *sku;
	int64 quantity;
	int64 cart_price;
} CartLine;

/* A stripe of a striped sku's units. */
typedef struct StripeRow
{
	int32			   stripe;
	int64			   on_hand;
	int64			   reserved;
	/* when row-locked, its version (store.c's); NULL when only read */
	struct RowVersion *version;
} StripeRow;

/*
 * A sku's inventory row, as row-locked (its latest version) or as read; for a
 * striped sku, on_hand and reserved are its stripes' sums as read.
 */
typedef struct LedgerRow
{
	bool  found;	 /* the sku is in the inventory */
	bool  rowlocked; /* this call holds the inventory row row-locked */
	int64 on_hand;
	int64 reserved;
	int64 unit_price;
	/* when row-locked, its version (store.c's); NULL when only read */
	struct RowVersion *version;
	int		   n_stripes; /* 0: unstriped, its units are its inventory row's */
	StripeRow *stripes;	  /* as read, in stripe order */
} LedgerRow;

/*
 * A reservation's share of one stock row of a sku: a stripe, or (0) its
 * inventory row.
 */
typedef struct ReservedPart
{
	char			  *sku;
	int32			   stripe;
	int64			   quantity;
	/* the version of the row this call holds row-locked (store.c's) */
	struct RowVersion *version;
} ReservedPart;

extern int	store_cart_lines(int64 lock_id, CartLine **lines);
extern bool store_first_unknown_line(int64 lock_id, char **line_id,
									 char **sku);
/* sku order (the column's collation): the order stock rows are taken in */
extern int	store_sku_cmp(const char *a, const char *b);
extern void store_stock_table_lock(void);
extern bool store_striping_in_use(void);
extern void store_ledger_rows(char *const *skus, int n, bool rowlock,
							  LedgerRow *rows);
extern bool store_ledger_rowlock(const char *sku, LedgerRow *row);
extern bool store_stripes_rowlock(const char *sku, const int32 *numbers, int n,
								  StripeRow *rows);
extern void store_reservation_insert(int64 lock_id, ReservedPart *parts,
									 int n);

/* striping: checkout_stripe, checkout_rebalance, restocks (stripes.c) */
extern void store_striping_table_lock(void);
extern void store_striping_changed(void);
extern bool store_sku_rowlock(const char *sku, bool for_striping,
							  int64 *on_hand, int64 *reserved);
extern int	store_stripes_read(const char *sku, StripeRow **rows);
extern int	store_stripes_rowlock_all(const char *sku, StripeRow **rows);
extern int	store_striped_skus(char ***skus);
extern void store_stripes_set_on_hand(const char *sku, const StripeRow *rows,
									  int n);
extern void store_sku_set_totals(const char *sku, int64 on_hand,
								 int64 reserved);
extern void store_stripes_totals(const StripeRow *rows, int n, int64 *on_hand,
								 int64 *reserved);
extern bool store_own_totals_write(void);
extern void store_stripes_replace(const char *sku, int n, const int64 *on_hand,
								  const int64 *reserved);
extern void store_reservations_restripe(const char *sku, int stripes,
										int64 *reserved);

/*
 * What a release or a sale moved: per row, a lock's sku and quantity, a lock's
 * rows together.
 */
typedef struct MovedStock
{
	int	   n;
	int64 *lock_ids;
	char **skus;
	int64 *quantities;
} MovedStock;

extern void store_held_stock_move(const int64 *lock_ids, int n, bool sell,
								  MovedStock *moved);
extern void store_held_stock_rowlock(const int64 *lock_ids, int n);

/* ---- price snapshots, orders, payments ---- */

extern void store_snapshots_insert(int64 lock_id, int n, char *const *line_ids,
								   char *const *skus, const int64 *quantities,
								   const int64 *cart_prices,
								   const int64 *locked_prices,
								   const Datum *drift_percents,
								   const bool  *unbounded);
extern void store_snapshots_delete(int64 lock_id);
extern bool store_order_insert(int64 lock_id, const char *cart_id, int64 total,
							   const char *order_ref, bool own);
extern int	store_orders_cancel(const int64 *lock_ids, int n,
								int64 **cancelled_ids, char ***order_refs);
extern int	store_compensations_insert(const int64 *lock_ids, const char *kind,
									   char *const *references,
									   const int64 *amounts, int n,
									   int64 **compensation_ids,
									   int64 **for_lock_ids);
extern void store_payment_metadata_insert(int64 lock_id, CheckoutPhase phase,
										  const char *metadata);

/* ---- checkout.table_access() ---- */
extern Datum checkout_table_access(PG_FUNCTION_ARGS);

#endif /* CHECKOUT_STORE_H */
