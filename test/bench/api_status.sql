-- pgbench: checkout_status of a random finished lock (ids :lid_lo..:lid_hi).
\set lid random(:lid_lo, :lid_hi)
SELECT * FROM checkout_status(:lid, 'bench');
