-- stress: the catalog side restocks a sku (journaled for the invariant check).
\set s random(1, :nskus)
\set n random(1, 10)
WITH r AS (UPDATE checkout.inventory SET on_hand = on_hand + :n WHERE sku = 'S-' || :s RETURNING sku)
INSERT INTO harness.restocks SELECT sku, :n FROM r;
