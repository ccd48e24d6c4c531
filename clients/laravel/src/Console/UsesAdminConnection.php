<?php

namespace Checkout\Laravel\Console;

use Checkout\Laravel\Exceptions\CheckoutException;
use Illuminate\Database\Connection;
use Illuminate\Database\DatabaseManager;
use Illuminate\Database\QueryException;

/** The admin commands' connection (config checkout.admin_connection) and what to say when its role lacks checkout_admin. */
trait UsesAdminConnection
{
    private function adminConnection(DatabaseManager $db): Connection
    {
        $config = $this->laravel['config']['checkout'];

        return $db->connection($config['admin_connection'] ?? $config['connection'] ?? null);
    }

    /** Print why a call failed; a missing privilege says which setting to fix. */
    private function failed(QueryException $e): int
    {
        $config = $this->laravel['config']['checkout'];
        if (CheckoutException::sqlStateOf($e) === '42501') {
            $name = $config['admin_connection'] ?? $config['connection'] ?? $this->laravel['config']['database.default'];
            $this->error(sprintf('%s needs a database role granted checkout_admin, and the connection "%s" has none (%s).',
                $this->getName(), $name, CheckoutException::serverMessageOf($e)));
            $this->line($config['admin_connection'] === null
                ? 'Set CHECKOUT_ADMIN_CONNECTION in .env to a connection of config/database.php whose role is granted checkout_admin'
                  .' (GRANT checkout_admin TO shop_ops;): checkout.admin_connection is not set, so the application\'s connection was used.'
                : "Grant checkout_admin to the role of the connection \"$name\" (GRANT checkout_admin TO ...;), or point CHECKOUT_ADMIN_CONNECTION at one that has it.");

            return self::FAILURE;
        }
        $this->error((CheckoutException::fromQueryException($e)?->getMessage()) ?? CheckoutException::serverMessageOf($e));

        return self::FAILURE;
    }
}
