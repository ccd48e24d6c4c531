-- stress: the admin sweep, racing the worker and the touches.
SELECT checkout_cleanup_expired(50);
