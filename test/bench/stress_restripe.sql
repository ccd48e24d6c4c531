-- stress: an admin stripes a sku anew (4 to 12 stripes), with reservations
-- live and every kind of call in flight.
\set s random(1, :nskus)
\set n random(4, 12)
SELECT harness.restripe('S-' || :s, :n);
