<?php

namespace CheckoutTest;

use Illuminate\Contracts\Console\Kernel as ConsoleKernelContract;
use Illuminate\Contracts\Debug\ExceptionHandler;
use Illuminate\Contracts\Http\Kernel as HttpKernelContract;
use Illuminate\Foundation\Application;
use Illuminate\Foundation\Console\Kernel as ConsoleKernel;
use Illuminate\Foundation\Exceptions\Handler;
use Illuminate\Http\Request;
use Illuminate\Session\Middleware\StartSession;
use Symfony\Component\HttpFoundation\Response;

/**
 * A Laravel application built the way a real one is (Foundation's
 * Application, console and HTTP kernels, config files in a base path,
 * routes/web.php and routes/api.php loaded as the skeleton's
 * RouteServiceProvider does), with the package's service provider listed in
 * config/app.php.  Connections: pgsql (checkout_php_app, the default), admin
 * (checkout_php_admin), listener (checkout_php_app, a separate PDO) and
 * super (the superuser, for migrations and the test trait).  Sessions: the
 * file driver, each request starting from a fresh session store as under
 * PHP-FPM.  Queue: sync unless a test says otherwise.  `$config` replaces
 * whole config files (name => array).  The same base path boots again in
 * another process (boot()), as PHP's built-in server does (HttpServer).
 */
final class TestApp
{
    public readonly Application $app;
    public readonly string $basePath;
    /** the cookies of one browser: name => value */
    private array $cookies = [];

    /**
     * `$files`: path => contents written under the base path before the
     * application boots (app/..., routes/..., .env); `$providers`: more
     * service providers for config/app.php.
     */
    public function __construct(TestDatabase $db, array $config = [], array $files = [], array $providers = [])
    {
        $this->basePath = sys_get_temp_dir().'/checkout_laravel_'.bin2hex(random_bytes(6));
        foreach (['config', 'bootstrap/cache', 'storage/framework/cache', 'storage/framework/sessions',
                  'storage/framework/views', 'storage/logs', 'routes', 'app', 'database/migrations'] as $dir) {
            mkdir($this->basePath.'/'.$dir, 0700, true);
        }
        $pid = getmypid();
        register_shutdown_function(fn () => getmypid() === $pid && self::removeTree($this->basePath));

        $this->writeConfig('app', [
            'name' => 'checkout-test',
            'env' => 'production',
            'debug' => false,
            'url' => 'http://localhost',
            'timezone' => 'UTC',
            'locale' => 'en',
            'key' => 'base64:'.base64_encode(random_bytes(32)),
            'cipher' => 'AES-256-CBC',
            'providers' => [
                \Illuminate\Cache\CacheServiceProvider::class,
                \Illuminate\Database\DatabaseServiceProvider::class,
                \Illuminate\Filesystem\FilesystemServiceProvider::class,
                \Illuminate\Session\SessionServiceProvider::class,
                \Illuminate\Cookie\CookieServiceProvider::class,
                \Illuminate\Encryption\EncryptionServiceProvider::class,
                \Illuminate\View\ViewServiceProvider::class,
                \Illuminate\Translation\TranslationServiceProvider::class,
                \Illuminate\Validation\ValidationServiceProvider::class,
                \Illuminate\Bus\BusServiceProvider::class,
                \Illuminate\Foundation\Providers\ConsoleSupportServiceProvider::class,
                \Illuminate\Queue\QueueServiceProvider::class,
                \Checkout\Laravel\CheckoutServiceProvider::class,
                RouteServiceProvider::class,
                ...$providers,
            ],
            'aliases' => [
                'DB' => \Illuminate\Support\Facades\DB::class,
                'Artisan' => \Illuminate\Support\Facades\Artisan::class,
                'Event' => \Illuminate\Support\Facades\Event::class,
                'Route' => \Illuminate\Support\Facades\Route::class,
                'Checkout' => \Checkout\Laravel\Facades\Checkout::class,
            ],
        ]);
        $this->writeConfig('database', [
            'default' => 'pgsql',
            'connections' => [
                'pgsql' => $db->laravelConnection(TestDatabase::APP_ROLE),
                'admin' => $db->laravelConnection(TestDatabase::ADMIN_ROLE),
                'listener' => $db->laravelConnection(TestDatabase::APP_ROLE),
                'super' => $db->laravelConnection(getenv('PGUSER') ?: 'postgres'),
            ],
            'migrations' => 'migrations',
        ]);
        $this->writeConfig('cache', ['default' => 'array', 'stores' => ['array' => ['driver' => 'array']], 'prefix' => 'test']);
        $this->writeConfig('queue', [
            'default' => 'sync',
            'connections' => [
                'sync' => ['driver' => 'sync'],
                'database' => ['driver' => 'database', 'connection' => 'super', 'table' => 'jobs', 'queue' => 'default', 'retry_after' => 90, 'after_commit' => false],
            ],
            'failed' => ['driver' => 'null'],
        ]);
        $this->writeConfig('session', [
            'driver' => 'file', 'lifetime' => 120, 'expire_on_close' => false, 'encrypt' => false,
            'files' => $this->basePath.'/storage/framework/sessions', 'connection' => null, 'table' => 'sessions',
            'store' => null, 'lottery' => [2, 100], 'cookie' => 'test_session', 'path' => '/', 'domain' => null,
            'secure' => false, 'http_only' => true, 'same_site' => 'lax',
        ]);
        $this->writeConfig('view', [
            'paths' => [$this->basePath.'/resources/views'],
            'compiled' => $this->basePath.'/storage/framework/views',
        ]);
        $this->writeConfig('logging', [
            'default' => 'single',
            'channels' => ['single' => ['driver' => 'single', 'path' => $this->logPath(), 'level' => 'debug']],
        ]);
        $this->writeConfig('checkout', [
            'connection' => 'pgsql', 'admin_connection' => 'admin', 'listen_connection' => 'listener',
            'channel' => 'checkout_events', 'ttl' => '10 minutes',
        ]);
        foreach ($config as $name => $values) {
            $values === null ? unlink("{$this->basePath}/config/$name.php") : $this->writeConfig($name, $values);
        }
        foreach ($files as $path => $contents) {
            $this->writeFile($path, $contents);
        }

        $this->app = self::boot($this->basePath, console: true);
        Tap::bailOnUncaught();   // Laravel's bootstrap set its own handler
    }

    /** The application of `$basePath`, bootstrapped by the console kernel (a CLI process) or the HTTP kernel (a server). */
    public static function boot(string $basePath, bool $console): Application
    {
        spl_autoload_register(function (string $class) use ($basePath) {
            if (str_starts_with($class, 'App\\') && is_file($file = $basePath.'/app/'.str_replace('\\', '/', substr($class, 4)).'.php')) {
                require $file;
            }
        });
        $app = new Application($basePath);
        $app->singleton(HttpKernelContract::class, HttpKernel::class);
        $app->singleton(ConsoleKernelContract::class, ConsoleKernel::class);
        $app->singleton(ExceptionHandler::class, Handler::class);
        $app->make($console ? ConsoleKernelContract::class : HttpKernelContract::class)->bootstrap();

        return $app;
    }

    /** The Set-Cookie of a response as a Cookie header (the session's). */
    public static function cookieHeader(array $headers): array
    {
        return isset($headers['set-cookie']) ? ['Cookie' => explode(';', $headers['set-cookie'])[0]] : [];
    }

    /** Write a file under the base path (routes/api.php, app/Http/Controllers/..., .env). */
    public function writeFile(string $path, string $contents): void
    {
        @mkdir(dirname($this->basePath.'/'.$path), 0700, true);
        file_put_contents($this->basePath.'/'.$path, $contents);
    }

    public function logPath(): string
    {
        return $this->basePath.'/storage/logs/laravel.log';
    }

    /** Send a request (JSON unless `$server` says otherwise) through the HTTP kernel, as one browser (its cookies kept). */
    public function request(string $method, string $uri, array $data = [], array $server = ['HTTP_ACCEPT' => 'application/json']): Response
    {
        $request = Request::create($uri, $method, $data, $this->cookies, [], $server);
        // a new process per request: nothing of the last request's session in memory
        $this->app['session']->forgetDrivers();
        $this->app->forgetInstance('session.store');
        $kernel = $this->app->make(HttpKernelContract::class);
        $response = $kernel->handle($request);
        $kernel->terminate($request, $response);
        // back to what a console process has: a request without a session
        $this->app->instance('request', Request::create('http://localhost'));
        foreach ($response->headers->getCookies() as $cookie) {
            $this->cookies[$cookie->getName()] = $cookie->getValue();
        }

        return $response;
    }

    /** A new browser: no cookies, so a new session. */
    public function newBrowser(): void
    {
        $this->cookies = [];
    }

    /** The current browser's cookies, to come back to it with useCookies(). */
    public function cookies(): array
    {
        return $this->cookies;
    }

    public function useCookies(array $cookies): void
    {
        $this->cookies = $cookies;
    }

    private function writeConfig(string $name, array $config): void
    {
        file_put_contents("{$this->basePath}/config/$name.php", '<?php return '.var_export($config, true).";\n");
    }

    private static function removeTree(string $dir): void
    {
        $items = new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator($dir, \FilesystemIterator::SKIP_DOTS),
            \RecursiveIteratorIterator::CHILD_FIRST);
        foreach ($items as $item) {
            $item->isDir() ? rmdir($item->getPathname()) : unlink($item->getPathname());
        }
        rmdir($dir);
    }
}

final class HttpKernel extends \Illuminate\Foundation\Http\Kernel
{
    protected $middleware = [];
    protected $middlewareGroups = [
        'web' => [StartSession::class, \Illuminate\Routing\Middleware\SubstituteBindings::class],
        'api' => [\Illuminate\Routing\Middleware\SubstituteBindings::class],
    ];
    protected $routeMiddleware = [];
}

/** The skeleton's: routes/api.php under /api with the api group, routes/web.php with the web group. */
final class RouteServiceProvider extends \Illuminate\Foundation\Support\Providers\RouteServiceProvider
{
    public function boot()
    {
        $this->routes(function () {
            $routes = $this->app->basePath('routes');
            if (is_file("$routes/api.php")) {
                \Illuminate\Support\Facades\Route::prefix('api')->middleware('api')->group("$routes/api.php");
            }
            if (is_file("$routes/web.php")) {
                \Illuminate\Support\Facades\Route::middleware('web')->group("$routes/web.php");
            }
        });
    }
}
