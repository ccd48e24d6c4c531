<?php

namespace Checkout\Laravel;

use Checkout\Laravel\Console\CleanupExpiredLocksCommand;
use Checkout\Laravel\Console\ListenCommand;
use Checkout\Laravel\Console\MonitorCommand;
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

        if ($this->app->runningInConsole()) {
            $this->commands([MonitorCommand::class, CleanupExpiredLocksCommand::class, ListenCommand::class]);
        }

        $this->callAfterResolving('router', function (Router $router) {
            $router->aliasMiddleware('checkout.unlocked', RejectWhileCartLocked::class);
        });

        // The cart table's protect_cart trigger raises KC030 from the
        // application's own queries: answer 423 (CartLocked) for it too.
        $this->callAfterResolving(ExceptionHandler::class, function ($handler) {
            if (method_exists($handler, 'renderable')) {
                $handler->renderable(function (QueryException $e, $request) {
                    $checkout = CheckoutException::fromQueryException($e);

                    return $checkout instanceof CartLocked ? $checkout->render($request) : null;
                });
            }
        });
    }
}
