-- stress: the catalog takes units away (refused, and so not journaled, when
-- fewer would be left on hand than reserved).
\set s random(1, :nskus)
\set n random(1, 5)
SELECT harness.destock('S-' || :s, :n);
