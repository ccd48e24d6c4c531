/*
 * checkout.c — module initialisation: the settings (settings.h declares
 * them), the shared-memory hooks of the wake-up (wakeup.c) and the
 * background worker's registration (worker.c).
 *
 * Business rules (tolerance, max TTL, protection, concurrency) are PGC_SUSET
 * so that checkout_app cannot loosen them for its own session; the default
 * TTL is the application's choice (PGC_USERSET, within max_ttl).
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"

#include "events.h"
#include "settings.h"
#include "wakeup.h"
#include "worker.h"

PG_MODULE_MAGIC;

int	   checkout_ttl_s = 15 * 60;
int	   checkout_max_ttl_s = 60 * 60;
int	   checkout_max_lines = 1000;
int	   checkout_cleanup_interval_s = 5 * 60;
int	   checkout_rebalance_interval_ms = 1000;
int	   checkout_event_retention_s = 7 * 24 * 60 * 60;
double checkout_price_drift_tolerance = 1.0;
bool   checkout_prevent_concurrent = true;
bool   checkout_cart_protection = true;
bool   checkout_direct_access = true;
bool   checkout_logging = true;
int	   checkout_log_event_mask = 0; /* set by assign_log_events */
int	   checkout_log_destination = LOG_DEST_SERVER_LOG;
char  *checkout_payment_gateway = NULL;
char  *checkout_notify_channel = NULL;

static char *log_events_string = NULL;
static char *notify_events_string = NULL;
int			 checkout_notify_event_mask = 0; /* set by assign_notify_events */
static char *database_list_string = NULL;

static const struct config_enum_entry log_destination_options[] = {
	{"server_log", LOG_DEST_SERVER_LOG, false},
	{"table", LOG_DEST_TABLE, false},
	{"both", LOG_DEST_BOTH, false},
	{NULL, 0, false},
};

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void _PG_init(void);

static void
checkout_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	wakeup_shmem_request();
}

static void
checkout_shmem_startup_hook(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	wakeup_shmem_startup();
}

static bool
check_notify_channel(char **newval, void **extra, GucSource source)
{
	if (*newval && strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errdetail("A channel name must be shorter than %d bytes.",
							NAMEDATALEN);
		return false;
	}
	return true;
}

void
_PG_init(void)
{
	DefineCustomIntVariable(
		"checkout.ttl", "Default time to live of a checkout lock.",
		"Used when checkout_start is called without a ttl; capped by checkout.max_ttl.",
		&checkout_ttl_s, 15 * 60, 1, INT_MAX, PGC_USERSET, GUC_UNIT_S, NULL,
		NULL, NULL);
	DefineCustomIntVariable(
		"checkout.max_ttl",
		"Longest a checkout lock may live, counted from its creation.",
		"Longer ttl arguments are clamped; checkout_extend never goes past it.",
		&checkout_max_ttl_s, 60 * 60, 1, INT_MAX, PGC_SUSET, GUC_UNIT_S, NULL,
		NULL, NULL);
	DefineCustomIntVariable("checkout.max_lines",
							"Most lines a cart passed to checkout_start may have.",
							"Larger carts are rejected with SQLSTATE 22023.",
							&checkout_max_lines, 1000, 1, 100000, PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("checkout.cleanup_interval",
							"Longest the background worker sleeps between sweeps.",
							"The worker also wakes at the earliest due expiry.",
							&checkout_cleanup_interval_s, 5 * 60, 1,
							INT_MAX / 1000, PGC_SIGHUP, GUC_UNIT_S, NULL, NULL,
							NULL);
	DefineCustomIntVariable(
		"checkout.rebalance_interval",
		"How often the background worker rebalances striped skus.",
		"It spreads a striped sku's units evenly over its stripes when one runs low, and folds its totals into its inventory row; 0: never.",
		&checkout_rebalance_interval_ms, 1000, 0, INT_MAX, PGC_SIGHUP,
		GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable(
		"checkout.event_retention",
		"How long rows of checkout.events are kept before the worker prunes them.",
		NULL, &checkout_event_retention_s, 7 * 24 * 60 * 60, 60, INT_MAX,
		PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomRealVariable(
		"checkout.price_drift_tolerance",
		"Largest accepted price change between cart and price lock, in percent.",
		"A larger drift fails the price_lock phase with KC012.",
		&checkout_price_drift_tolerance, 1.0, 0.0, 1000000.0, PGC_SUSET, 0,
		NULL, NULL, NULL);
	DefineCustomBoolVariable("checkout.prevent_concurrent",
							 "Allow at most one active checkout lock per cart.",
							 NULL, &checkout_prevent_concurrent, true,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable(
		"checkout.cart_protection",
		"Make checkout.protect_cart() reject cart changes while the cart is locked.",
		NULL, &checkout_cart_protection, true, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable(
		"checkout.direct_access",
		"Read and write the extension's tables without planned statements where that equals SQL.",
		"Off: every read and write goes through SQL statements.",
		&checkout_direct_access, true, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("checkout.logging", "Log checkout events.", NULL,
							 &checkout_logging, true, PGC_SUSET, 0, NULL, NULL,
							 NULL);
	DefineCustomStringVariable(
		"checkout.log_events", "Event categories to log.",
		"Comma list of lifecycle, failures, rollbacks, price_drift, phases, stock; or all, none.",
		&log_events_string, log_events_default(), PGC_SUSET, GUC_LIST_INPUT,
		check_log_events, assign_log_events, NULL);
	DefineCustomEnumVariable("checkout.log_destination",
							 "Where checkout events are logged.",
							 "server_log, table (checkout.events) or both.",
							 &checkout_log_destination, LOG_DEST_SERVER_LOG,
							 log_destination_options, PGC_SUSET, 0, NULL, NULL,
							 NULL);
	DefineCustomStringVariable("checkout.payment_gateway",
							   "Payment gateway label recorded on new locks.",
							   NULL, &checkout_payment_gateway, "stripe",
							   PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable(
		"checkout.notify_channel",
		"Channel for NOTIFY of events the application must act on ('' = off).",
		NULL, &checkout_notify_channel, "checkout_events", PGC_SUSET, 0,
		check_notify_channel, NULL, NULL);
	DefineCustomStringVariable(
		"checkout.notify_events",
		"Events notified on checkout.notify_channel.",
		"Comma list of void_required, refund_required, expired, completed, failed; or all, none.",
		&notify_events_string, notify_events_default(), PGC_SUSET,
		GUC_LIST_INPUT, check_notify_events, assign_notify_events, NULL);

	/*
	 * A postmaster setting can only be created while preloading (later it is
	 * FATAL); without preload there is no worker for it to configure.
	 */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("checkout.database",
								   "Databases the background worker sweeps (comma list).",
								   NULL, &database_list_string, "postgres",
								   PGC_POSTMASTER, GUC_LIST_INPUT,
								   check_database_list, assign_database_list,
								   NULL);

	MarkGUCPrefixReserved("checkout");

	events_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = checkout_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = checkout_shmem_startup_hook;

	checkout_worker_register();
}
