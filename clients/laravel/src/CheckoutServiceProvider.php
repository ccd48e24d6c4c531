<?php

namespace Checkout\Laravel;

use Checkout\Laravel\Console\CleanupExpiredLocksCommand;
use Checkout\Laravel\Console\DispatchCompensationsCommand;
use Checkout\Laravel\Console\ListenCommand;
use Checkout\Laravel\Console\MonitorCommand;
use Checkout\Laravel\Console\PruneExpiredCommand;
use Checkout\Laravel\Exceptions\CartLocked;
use Checkout\Laravel\Exceptions\CheckoutException;
use Checkout\Laravel\Http\Middleware\RejectWhileCartLocked;
use Illuminate\Contracts\Debug\ExceptionHandler;
use Illuminate\Database\QueryException;
use Illuminate\Routing\Router;
use Illuminate\Support\ServiceProvider;

class CheckoutServiceProvider extends ServiceProvider
{
    public function register(): void
    {
        $this->mergeConfigFrom(__DIR__.'/../config/checkout.php', 'checkout');
        $this->app->singleton(Checkout::class, fn ($app) => new Checkout($app['db'], $app, $app['config']['checkout']));
        $this->app->alias(Checkout::class, 'checkout');
    }

    public function boot(): void
    {
        $this->publishes([__DIR__.'/../config/checkout.php' => $this->app->configPath('checkout.php')], 'checkout-config');
        $this->publishes([__DIR__.'/../database/migrations/protect_cart.php.stub' => $this->app->databasePath(
            'migrations/'.date('Y_m_d_His').'_protect_cart_lines.php')], 'checkout-migrations');

        if ($this->app->runningInConsole()) {
            $this->commands([MonitorCommand::class, PruneExpiredCommand::class, CleanupExpiredLocksCommand::class,
                ListenCommand::class, DispatchCompensationsCommand::class]);
        }

        $this->callAfterResolving('router', function (Router $router) {
            $router->aliasMiddleware('checkout.unlocked', RejectWhileCartLocked::class);
        });

        $this->callAfterResolving(ExceptionHandler::class, function ($handler) {
            // The cart table's protect_cart trigger raises KC030 from the
            // application's own queries: that QueryException is CartLocked, a
            // client error (not reported, 423) like the service's own.
            if (method_exists($handler, 'map')) {
                $handler->map(QueryException::class, function (QueryException $e) {
                    $checkout = CheckoutException::fromQueryException($e);

                    return $checkout instanceof CartLocked ? $checkout : $e;
                });
            }
            // Laravel 8 renders a mapped exception without calling its
            // render(): give it the package's body for JSON requests.
            if (method_exists($handler, 'renderable')) {
                $handler->renderable(fn (CheckoutException $e, $request) => $e->render($request));
            }
        });
    }
}
