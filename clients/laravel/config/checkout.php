<?php

// The application's choices only.  Business rules (lock lifetime cap, price
// drift tolerance, cart protection, logging, the NOTIFY channel, which
// databases the worker sweeps) are the DBA's: they live in postgresql.conf and
// the application role cannot change them.

return [

    // Connection (config/database.php) whose role is granted checkout_app.
    // null: the default connection.
    'connection' => env('CHECKOUT_CONNECTION'),

    // Connection for checkout:monitor and checkout:prune-expired: a role
    // granted checkout_admin.  null: the same as 'connection', whose role
    // (checkout_app) may not run them: the commands then say to set this.
    'admin_connection' => env('CHECKOUT_ADMIN_CONNECTION'),

    // Connection that LISTENs in checkout:listen.  It must reach PostgreSQL
    // directly: LISTEN does not survive a transaction-pooling pgbouncer.
    // null: the same as 'connection'.
    'listen_connection' => env('CHECKOUT_LISTEN_CONNECTION'),

    // The channel the server NOTIFYs on: the DBA's checkout.notify_channel.
    'channel' => env('CHECKOUT_CHANNEL', 'checkout_events'),

    // Lifetime asked for each new checkout lock when the call gives none:
    // seconds, or a PostgreSQL interval such as '20 minutes'.  null: the
    // server's checkout.ttl.  The server caps it at checkout.max_ttl.
    'ttl' => env('CHECKOUT_TTL'),

];
