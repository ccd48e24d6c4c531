-- stress: an admin rebalances a sku (the worker rebalances every one too).
\set s random(1, :nskus)
SELECT checkout_rebalance('S-' || :s);
