/*
 * settings.h — the extension's settings (checkout.*), as the variables the
 * GUC machinery keeps current.  checkout.c defines them and their
 * documentation in _PG_init; any module may read them, none writes them.
 * checkout.database belongs to worker.c, which alone reads it.
 */
#ifndef CHECKOUT_SETTINGS_H
#define CHECKOUT_SETTINGS_H

extern int	  checkout_ttl_s;
extern int	  checkout_max_ttl_s;
extern int	  checkout_max_lines;
extern int	  checkout_cleanup_interval_s;
extern int	  checkout_rebalance_interval_ms;
extern int	  checkout_event_retention_s;
extern double checkout_price_drift_tolerance;
extern bool	  checkout_prevent_concurrent;
extern bool	  checkout_cart_protection;
extern bool	  checkout_direct_access;
extern bool	  checkout_logging;
/* the EVC_* bits (events.h) of checkout.log_events */
extern int	  checkout_log_event_mask;
extern int	  checkout_log_destination; /* LOG_DEST_* (events.h) */
/* the NTF_* bits (events.c) of checkout.notify_events */
extern int	  checkout_notify_event_mask;
extern char	 *checkout_payment_gateway;
extern char	 *checkout_notify_channel;

#endif /* CHECKOUT_SETTINGS_H */
