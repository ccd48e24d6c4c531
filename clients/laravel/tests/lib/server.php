<?php

// The router script of PHP's built-in server (HttpServer): each request boots
// the test application of CHECKOUT_TEST_APP from its base path and goes
// through Laravel's HTTP kernel, as public/index.php does under PHP-FPM.

require __DIR__.'/autoload.php';

use Illuminate\Contracts\Http\Kernel;
use Illuminate\Http\Request;

$app = \CheckoutTest\TestApp::boot(getenv('CHECKOUT_TEST_APP'), console: false);
$kernel = $app->make(Kernel::class);
$response = $kernel->handle($request = Request::capture());
$response->send();
$kernel->terminate($request, $response);
