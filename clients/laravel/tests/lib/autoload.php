<?php

// Laravel's components from Debian's packages (php-laravel-framework,
// autoloaders under /usr/share/php), PHPUnit's when installed (the fake's
// assertions), the package by its PSR-4 map and the test library.

error_reporting(E_ALL);
set_include_path(get_include_path().PATH_SEPARATOR.'/usr/share/php');
require_once 'Illuminate/autoload.php';
if (stream_resolve_include_path('PHPUnit/Autoload.php')) {
    require_once 'PHPUnit/Autoload.php';
}

spl_autoload_register(function (string $class) {
    foreach (['Checkout\\Laravel\\' => __DIR__.'/../../src/', 'CheckoutTest\\' => __DIR__.'/'] as $prefix => $dir) {
        if (str_starts_with($class, $prefix)) {
            $file = $dir.str_replace('\\', '/', substr($class, strlen($prefix))).'.php';
            if (is_file($file)) {
                require $file;
            }
        }
    }
});
require_once __DIR__.'/TestApp.php';   // also defines CheckoutTest\HttpKernel and RouteServiceProvider
