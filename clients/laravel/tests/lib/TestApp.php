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
 * Application, console and HTTP kernels, config files in a base path), with
 * the package's service provider listed in config/app.php.  Connections:
 * pgsql (checkout_php_app, the default), admin (checkout_php_admin) and
 * listener (checkout_php_app, a separate PDO).  Sessions: the file driver,
 * each request starting from a fresh session store as under PHP-FPM.
 */
final class TestApp
{
    public readonly Application $app;
    public readonly string $basePath;
    /** the cookies of one browser: name => value */
    private array $cookies = [];

    public function __construct(TestDatabase $db)
    {
        $this->basePath = sys_get_temp_dir().'/checkout_laravel_'.bin2hex(random_bytes(6));
        foreach (['config', 'bootstrap/cache', 'storage/framework/cache', 'storage/framework/sessions',
                  'storage/framework/views', 'storage/logs'] as $dir) {
            mkdir($this->basePath.'/'.$dir, 0700, true);
        }
        register_shutdown_function(fn () => self::removeTree($this->basePath));

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
                \Illuminate\Database\DatabaseServiceProvider::class,
                \Illuminate\Filesystem\FilesystemServiceProvider::class,
                \Illuminate\Session\SessionServiceProvider::class,
                \Illuminate\Cookie\CookieServiceProvider::class,
                \Illuminate\Encryption\EncryptionServiceProvider::class,
                \Illuminate\View\ViewServiceProvider::class,
                \Checkout\Laravel\CheckoutServiceProvider::class,
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
            ],
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

        $this->app = new Application($this->basePath);
        $this->app->singleton(HttpKernelContract::class, HttpKernel::class);
        $this->app->singleton(ConsoleKernelContract::class, ConsoleKernel::class);
        $this->app->singleton(ExceptionHandler::class, Handler::class);
        $this->app->make(ConsoleKernelContract::class)->bootstrap();
        Tap::bailOnUncaught();   // Laravel's bootstrap set its own handler
    }

    public function logPath(): string
    {
        return $this->basePath.'/storage/logs/laravel.log';
    }

    /** Send a JSON request through the HTTP kernel, as one browser (its cookies kept). */
    public function request(string $method, string $uri, array $data = []): Response
    {
        $request = Request::create($uri, $method, $data, $this->cookies, [], ['HTTP_ACCEPT' => 'application/json']);
        // a new process per request: nothing of the last request's session in memory
        $this->app['session']->forgetDrivers();
        $this->app->forgetInstance('session.store');
        $kernel = $this->app->make(HttpKernelContract::class);
        $response = $kernel->handle($request);
        $kernel->terminate($request, $response);
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
    protected $middlewareGroups = ['web' => [StartSession::class]];
    protected $routeMiddleware = [];
}
