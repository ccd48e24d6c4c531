<?php

// The README as an application: its install commands (vendor:publish of the
// config and the migration), the DBA's roles, its .env, its admin
// connection in Laravel's config/database.php, its migration (migrate and
// migrate:rollback), its web routes through PHP's built-in server with a
// session cookie (201 for the start that created the lock, the middleware's
// and the trigger's 423, the payment), and checkout:monitor on the admin
// connection of the .env.  Every named code block of the README is run by
// some test (issue 20, item 9), and every block is named.

require __DIR__.'/lib/bootstrap.php';

use Checkout\Laravel\Database\CartProtection;
use CheckoutTest\HttpServer;
use CheckoutTest\Readme;
use CheckoutTest\ShopApp;
use CheckoutTest\Tap;
use CheckoutTest\TestApp;
use CheckoutTest\TestDatabase;
use Illuminate\Support\Facades\Artisan;

// --- every block named, every name run ---------------------------------------
$names = array_keys(Readme::snippets());
Tap::is(count($names), Readme::codeBlocks(), 'every code block of clients/laravel/README.md is a named snippet');
$sources = implode("\n", array_map('file_get_contents', array_merge(glob(__DIR__.'/*.php'), glob(__DIR__.'/lib/*.php'))));
Tap::is(array_values(array_filter($names, fn ($n) => ! str_contains($sources, "snippet('$n')"))), [], 'every snippet is run by a test');

$db = new TestDatabase('readme');
$db->stock(['A-1' => [10, 1000]]);

// --- the DBA's roles ----------------------------------------------------------
foreach (['shop_app', 'shop_ops'] as $role) {
    try {
        $db->super->exec("DROP ROLE IF EXISTS $role");
    } catch (PDOException) {   // left by another run with grants elsewhere: it is the same role
    }
}
foreach (array_filter(array_map('trim', explode(";", preg_replace('/--[^\n]*/', '', Readme::snippet('roles'))))) as $statement) {
    try {
        $db->super->exec($statement);
    } catch (PDOException $e) {
        Tap::ok($e->errorInfo[0] === '42710', 'roles: only "already exists" may be left from another run', $e->getMessage());
    }
}
Tap::is($db->value("SELECT string_agg(r.rolname || ' ' || g.rolname, ', ' ORDER BY r.rolname) FROM pg_auth_members m
    JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid WHERE r.rolname IN ('shop_app', 'shop_ops')"),
    'shop_app checkout_app, shop_ops checkout_admin', 'README roles: shop_app in checkout_app, shop_ops in checkout_admin');
$db->shopTables(protected: false, role: 'shop_app');

// --- .env and config/database.php -------------------------------------------------
$env = preg_replace(['/^DB_HOST=.*$/m', '/^DB_PORT=.*$/m', '/^DB_DATABASE=.*$/m'],
    ["DB_HOST={$db->host}", "DB_PORT={$db->port}", "DB_DATABASE={$db->name}"], Readme::snippet('env'));
$super = var_export($db->laravelConnection(getenv('PGUSER') ?: 'postgres'), true);
$database = <<<PHP
    <?php

    // Laravel 8's config/database.php (its pgsql connection), the README's admin
    // connection, and the test's superuser connection for the stand-ins
    return [
        'default' => env('DB_CONNECTION', 'mysql'),
        'connections' => [
            'pgsql' => [
                'driver' => 'pgsql',
                'url' => env('DATABASE_URL'),
                'host' => env('DB_HOST', '127.0.0.1'),
                'port' => env('DB_PORT', '5432'),
                'database' => env('DB_DATABASE', 'forge'),
                'username' => env('DB_USERNAME', 'forge'),
                'password' => env('DB_PASSWORD', ''),
                'charset' => 'utf8',
                'prefix' => '',
                'prefix_indexes' => true,
                'schema' => 'public',
                'sslmode' => 'prefer',
            ],

    PHP;
$database .= Readme::snippet('database-connections')."        'super' => $super,\n    ],\n    'migrations' => 'migrations',\n];\n";
$test = new TestApp($db, config: ['database' => null, 'checkout' => null],
    files: ShopApp::files() + ['.env' => $env, 'config/database.php' => $database], providers: ShopApp::providers());
Tap::is([config('database.default'), config('database.connections.pgsql.username'), config('database.connections.pgsql_admin.username'),
         config('checkout.admin_connection'), config('checkout.ttl')], ['pgsql', 'shop_app', 'shop_ops', 'pgsql_admin', '20 minutes'],
    'README .env and connections: the application as shop_app, the admin connection as shop_ops, ttl 20 minutes');

// --- install: the two artisan lines -------------------------------------------------
$install = Readme::snippet('install');
preg_match_all('/^php artisan (.+)$/m', $install, $m);
Tap::is(count($m[1]), 2, 'README install: two artisan commands');
foreach ($m[1] as $command) {
    Tap::is(Artisan::call($command), 0, "php artisan $command");
}
Tap::is(file_get_contents($test->basePath.'/config/checkout.php'), file_get_contents(__DIR__.'/../config/checkout.php'), 'the config was published');
$published = glob($test->basePath.'/database/migrations/*_protect_cart_lines.php');
Tap::is(count($published), 1, 'the migration was published');
Tap::is(file_get_contents($published[0] ?? '/dev/null'), Readme::snippet('migration'), 'it is the README\'s migration, byte for byte');

// --- migrate: the trigger ---------------------------------------------------------------
Tap::is(Artisan::call('migrate', ['--database' => 'super', '--force' => true]), 0, 'migrate');
Tap::ok(CartProtection::isEnabled('cart_lines', 'super'), 'cart_lines has the protect_cart trigger');

// --- the web routes, through PHP's server, as one browser and another ---------------------------
$db->cart('c-1', [['1', 'A-1', 2, 1000]]);
$server = new HttpServer($test, workers: 2);
[$status, $headers, $body] = $server->request('POST', '/cart/c-1/checkout');
$browser = TestApp::cookieHeader($headers);
$started = json_decode($body, true);
Tap::is([$status, $started['state'] ?? null, $started['phase'] ?? null, $started['total'] ?? null, $started['next_phase'] ?? null, $started['created'] ?? null],
    [201, 'active', 'price_lock', 2000, 'payment_authorization', false], 'README web: 201, stock reserved and prices locked, next the payment');
Tap::ok($browser !== [], 'the session cookie');
$lockTtl = (int) $db->value('SELECT extract(epoch FROM expires_at - created_at) FROM checkout.locks WHERE lock_id = ?', [$started['lock_id'] ?? 0]);
Tap::is($lockTtl, 1200, 'the lock lives CHECKOUT_TTL, 20 minutes');
Tap::is($server->request('POST', '/cart/c-1/checkout', null, $browser)[0], 200, 'the same browser again: 200, the same lock (not created)');
[$status, $headers] = $server->request('POST', '/cart/c-1/checkout', null, ['Accept' => 'text/html']);
Tap::is($status, 302, 'another browser: back with errors (CheckoutInProgress caught)');
[$status, , $body] = $server->request('POST', '/cart/c-1/items', ['line_id' => '2', 'sku' => 'A-1', 'quantity' => 1, 'unit_price' => 1000], $browser);
Tap::is([$status, json_decode($body, true)['code'] ?? null], [423, 'KC030'], 'this browser edits its cart: 423 from the middleware');
[$status, , $body] = $server->request('POST', '/cart/c-1/items', ['line_id' => '2', 'sku' => 'A-1', 'quantity' => 1, 'unit_price' => 1000]);
Tap::is([$status, json_decode($body, true)['code'] ?? null], [423, 'KC030'], 'another browser: 423 from the migration\'s trigger');
[$status, , $body] = $server->request('POST', "/checkout/{$started['lock_id']}/pay", ['card' => '4242'], $browser);
Tap::is([$status, json_decode($body, true)['phase'] ?? null, json_decode($body, true)['next_phase'] ?? null],
    [200, 'order_creation', 'payment_capture'], 'pay: authorised (the application\'s gateway), order created');
Tap::is((int) $db->value('SELECT count(*) FROM checkout.orders WHERE lock_id = ?', [$started['lock_id']]), 1, 'the order exists');
[$status, , $body] = $server->request('POST', "/checkout/{$started['lock_id']}/pay", ['card' => '4242'], $browser);
Tap::is([$status, json_decode($body, true)['phase'] ?? null], [200, 'order_creation'], 'pay again: needsPayment() is false, nothing charged twice');

// --- the admin connection of the .env ---------------------------------------------------------
Tap::is(Artisan::call('checkout:monitor'), 0, 'checkout:monitor on pgsql_admin (shop_ops) from the README\'s .env');

// --- migrate:rollback ---------------------------------------------------------------------------
Tap::is(Artisan::call('migrate:rollback', ['--database' => 'super', '--force' => true]), 0, 'migrate:rollback');
Tap::ok(! CartProtection::isEnabled('cart_lines', 'super'), 'the trigger is gone');

Tap::done();
