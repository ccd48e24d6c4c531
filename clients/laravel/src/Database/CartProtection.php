<?php

namespace Checkout\Laravel\Database;

use Illuminate\Database\Connection;
use Illuminate\Support\Facades\DB;
use InvalidArgumentException;

/**
 * For migrations: the checkout.protect_cart() trigger on the application's
 * cart table, which refuses (KC030, rendered as 423) any insert, update or
 * delete of a cart's rows while a checkout holds the cart - from whichever
 * session, controller or queue job.  The migration's role needs the TRIGGER
 * privilege on the table (its owner has it) and checkout_app.
 *
 *     public function up(): void   { CartProtection::enable('cart_lines', 'cart_id'); }
 *     public function down(): void { CartProtection::disable('cart_lines'); }
 */
final class CartProtection
{
    public const TRIGGER = 'checkout_protect_cart';

    /** Create the trigger on `$table` (optionally schema-qualified), `$column` holding the cart id. */
    public static function enable(string $table, string $column = 'cart_id', ?string $connection = null): void
    {
        $db = DB::connection($connection);
        if (! $db->getSchemaBuilder()->hasColumn($table, $column)) {
            throw new InvalidArgumentException("table \"$table\" has no column \"$column\" for checkout.protect_cart");
        }
        $db->statement(sprintf(
            'create trigger %s before insert or update or delete on %s for each row execute function checkout.protect_cart(%s)',
            self::quote(self::TRIGGER), self::table($db, $table), $db->getPdo()->quote($column)));
    }

    public static function disable(string $table, ?string $connection = null): void
    {
        $db = DB::connection($connection);
        $db->statement(sprintf('drop trigger if exists %s on %s', self::quote(self::TRIGGER), self::table($db, $table)));
    }

    /** The table has the package's trigger. */
    public static function isEnabled(string $table, ?string $connection = null): bool
    {
        $db = DB::connection($connection);

        return (bool) $db->selectOne('select exists (select from pg_catalog.pg_trigger
            where tgrelid = ?::regclass and tgname = ? and not tgisinternal) as enabled',
            [self::table($db, $table), self::TRIGGER])->enabled;
    }

    /** The table name with the connection's prefix, each part quoted. */
    private static function table(Connection $db, string $table): string
    {
        $parts = explode('.', $table);
        $parts[count($parts) - 1] = $db->getTablePrefix().end($parts);

        return implode('.', array_map(fn (string $part) => self::quote($part), $parts));
    }

    private static function quote(string $identifier): string
    {
        return '"'.str_replace('"', '""', $identifier).'"';
    }
}
