<?php

// Test bootstrap: the autoloaders (autoload.php) and a TAP producer.

require_once __DIR__.'/autoload.php';
require_once __DIR__.'/Tap.php';
\CheckoutTest\Tap::bailOnUncaught();
