-- pgbench: the baseline, the same writes as a checkout done by hand in plain SQL
-- (reserve, record the order, sell the stock, mark it completed), one statement
-- per transaction like the four API calls of api.sql.  Variables: nskus (-D).
\set sku random(1, :nskus)
\set q random(1, 3)
\set r random(1, 1000000000)
UPDATE harness.inventory SET reserved = reserved + :q WHERE sku = 'S-' || :sku AND on_hand - reserved >= :q;
INSERT INTO harness.orders (cart_id, session_id, sku, quantity, total)
  VALUES ('c-' || :client_id || '-' || :r, 's-' || :client_id, 'S-' || :sku, :q, :q * 100) RETURNING id AS order_id \gset
UPDATE harness.inventory SET on_hand = on_hand - :q, reserved = reserved - :q WHERE sku = 'S-' || :sku;
UPDATE harness.orders SET state = 'completed' WHERE id = :order_id;
