<?php

namespace Checkout\Laravel\Testing;

use Illuminate\Database\Connection;

/**
 * For feature tests against a real PostgreSQL with the extension (where
 * Checkout::fake() is not enough): before each test, the extension is
 * installed in the test database if it is not, and its data is emptied -
 * locks, reservations, orders, compensations, events and the inventory, the
 * ids restarting at 1 - and again after the test, so no test sees another's
 * checkout (a lock left active would answer the next start with KC001, and
 * the cart table's protect_cart trigger would refuse the next test's cart
 * rows, also in a test class that uses Checkout::fake()).  Seed stock with
 * checkoutStock().
 *
 * It needs a connection that may create the extension and empty its tables:
 * a superuser, as a test database's usually is.  Name it in the test case
 * with `protected string $checkoutConnection = 'pgsql_super';` (default:
 * the default connection).
 *
 *     class CheckoutTest extends TestCase
 *     {
 *         use RefreshCheckout;
 *     }
 */
trait RefreshCheckout
{
    private bool $checkoutRefreshed = false;

    /** Laravel 8's setUpTraits() knows only its own traits: hook in after them. */
    protected function setUpTraits()
    {
        $uses = parent::setUpTraits();
        $this->setUpRefreshCheckout();

        return $uses;
    }

    /** Later Laravel versions call setUp<Trait>() on their own: it runs once per test either way. */
    public function setUpRefreshCheckout(): void
    {
        if ($this->checkoutRefreshed) {
            return;
        }
        $this->checkoutRefreshed = true;
        $this->refreshCheckout();
        $this->beforeApplicationDestroyed(fn () => $this->refreshCheckout());
    }

    /** Install the extension if needed and empty its tables. */
    protected function refreshCheckout(): void
    {
        $db = $this->checkoutDatabase();
        $db->statement('create extension if not exists checkout');
        $tables = array_map(fn (object $row) => $row->name, $db->select(
            "select format('%I.%I', n.nspname, c.relname) as name
             from pg_catalog.pg_extension e
             cross join lateral unnest(e.extconfig) as config(oid)
             join pg_catalog.pg_class c on c.oid = config.oid and c.relkind = 'r'
             join pg_catalog.pg_namespace n on n.oid = c.relnamespace
             where e.extname = 'checkout'"));
        $db->statement('truncate '.implode(', ', $tables).' restart identity');
    }

    /** Stock and current prices: ['A-1' => [on_hand, unit_price], ...] (prices in minor units). */
    protected function checkoutStock(array $skus): void
    {
        foreach ($skus as $sku => [$onHand, $unitPrice]) {
            $this->checkoutDatabase()->insert('insert into checkout.inventory (sku, on_hand, unit_price) values (?, ?, ?)
                on conflict (sku) do update set on_hand = excluded.on_hand, unit_price = excluded.unit_price',
                [$sku, $onHand, $unitPrice]);
        }
    }

    protected function checkoutDatabase(): Connection
    {
        return $this->app['db']->connection(property_exists($this, 'checkoutConnection') ? $this->checkoutConnection : null);
    }
}
