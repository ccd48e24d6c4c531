<?php

namespace CheckoutTest;

use PDO;

/**
 * A database of its own for one test file, in the cluster libpq's PGHOST,
 * PGPORT and PGUSER (a superuser) point at; dropped when the file ends.
 * Not named in checkout.database, so no background worker sweeps it: expiry
 * happens only when a test asks for it.  Login roles: checkout_php_app
 * (granted checkout_app) and checkout_php_admin (granted checkout_admin).
 */
final class TestDatabase
{
    public const APP_ROLE = 'checkout_php_app';
    public const ADMIN_ROLE = 'checkout_php_admin';

    public readonly string $name;
    public readonly string $host;
    public readonly int $port;
    /** superuser connection to the test database, for fixtures and for looking behind the API */
    public readonly PDO $super;

    public function __construct(string $suffix)
    {
        $this->host = getenv('PGHOST') ?: '/var/run/postgresql';
        $this->port = (int) (getenv('PGPORT') ?: 5432);
        $this->name = 'checkout_php_'.preg_replace('/\W/', '_', $suffix);

        $maintenance = $this->connect(getenv('PGDATABASE') ?: 'postgres', getenv('PGUSER') ?: 'postgres');
        $maintenance->exec('DROP DATABASE IF EXISTS '.$this->name.' WITH (FORCE)');
        $maintenance->exec('CREATE DATABASE '.$this->name);
        register_shutdown_function(function () use ($maintenance) {
            $maintenance->exec('DROP DATABASE IF EXISTS '.$this->name.' WITH (FORCE)');
        });

        $this->super = $this->connect($this->name, getenv('PGUSER') ?: 'postgres');
        $this->super->exec('SET client_min_messages = warning');
        $this->super->exec('CREATE EXTENSION checkout');
        // the listener tests hear completed and failed too (off by default)
        $this->super->exec('ALTER DATABASE '.$this->name." SET checkout.notify_events = 'all'");
        // roles are cluster-wide: another test file may have made them
        foreach ([self::APP_ROLE => 'checkout_app', self::ADMIN_ROLE => 'checkout_admin'] as $role => $group) {
            $this->super->exec("DO \$\$ BEGIN
                CREATE ROLE $role LOGIN IN ROLE $group;
            EXCEPTION WHEN duplicate_object THEN NULL; END \$\$");
        }
    }

    public function connect(string $database, string $user): PDO
    {
        return new PDO("pgsql:host={$this->host};port={$this->port};dbname=$database", $user, null,
            [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION, PDO::ATTR_DEFAULT_FETCH_MODE => PDO::FETCH_ASSOC]);
    }

    /** Stock and current prices: ['A-1' => [on_hand, unit_price], ...] */
    public function stock(array $skus): void
    {
        $insert = $this->super->prepare('INSERT INTO checkout.inventory (sku, on_hand, unit_price) VALUES (?, ?, ?)');
        foreach ($skus as $sku => [$onHand, $price]) {
            $insert->execute([$sku, $onHand, $price]);
        }
    }

    /** The application's cart table app_cart_lines, guarded by checkout.protect_cart(). */
    public function protectedCartTable(): void
    {
        $this->super->exec("CREATE TABLE app_cart_lines (cart_id text NOT NULL, sku text NOT NULL, quantity int NOT NULL);
            CREATE TRIGGER cart_lines_locked BEFORE INSERT OR UPDATE OR DELETE ON app_cart_lines
                FOR EACH ROW EXECUTE FUNCTION checkout.protect_cart('cart_id');
            GRANT SELECT, INSERT, UPDATE, DELETE ON app_cart_lines TO ".self::APP_ROLE);
    }

    /**
     * The README's application tables: cart_lines (guarded by
     * checkout.protect_cart() when `$protected`) and payments, owned by the
     * superuser, written by the application role.
     */
    public function shopTables(bool $protected = true, string $role = self::APP_ROLE): void
    {
        $this->super->exec("CREATE TABLE IF NOT EXISTS cart_lines (cart_id text NOT NULL, line_id text NOT NULL, sku text NOT NULL,
                quantity int NOT NULL, unit_price bigint NOT NULL, PRIMARY KEY (cart_id, line_id));
            CREATE TABLE IF NOT EXISTS payments (reference text PRIMARY KEY, lock_id bigint NOT NULL, checkout_token text NOT NULL);
            CREATE TABLE IF NOT EXISTS confirmations (lock_id bigint NOT NULL, sent_by text NOT NULL, sent_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE IF NOT EXISTS gateway_calls (call text NOT NULL, idempotency_key text NOT NULL);
            GRANT SELECT, INSERT, UPDATE, DELETE ON cart_lines, payments, confirmations TO $role");
        if ($protected) {
            $this->super->exec("CREATE TRIGGER cart_lines_locked BEFORE INSERT OR UPDATE OR DELETE ON cart_lines
                FOR EACH ROW EXECUTE FUNCTION checkout.protect_cart('cart_id')");
        }
    }

    /** Cart lines: [line_id, sku, quantity, unit_price] for `$cartId`. */
    public function cart(string $cartId, array $lines): void
    {
        $insert = $this->super->prepare('INSERT INTO cart_lines VALUES (?, ?, ?, ?, ?)');
        foreach ($lines as $line) {
            $insert->execute([$cartId, ...$line]);
        }
    }

    /** One value of a superuser query. */
    public function value(string $sql, array $params = []): mixed
    {
        $statement = $this->super->prepare($sql);
        $statement->execute($params);

        return $statement->fetchColumn();
    }

    /** The config/database.php connection for `$role`. */
    public function laravelConnection(string $role): array
    {
        return [
            'driver' => 'pgsql',
            'host' => $this->host,
            'port' => $this->port,
            'database' => $this->name,
            'username' => $role,
            'password' => '',
            'charset' => 'utf8',
            'prefix' => '',
            'schema' => 'public',
            'sslmode' => 'disable',
        ];
    }
}
