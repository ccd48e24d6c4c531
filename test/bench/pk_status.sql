-- pgbench: what checkout_status is held against, a primary-key SELECT of the
-- same lock row with the same columns.
\set lid random(:lid_lo, :lid_hi)
SELECT lock_id, cart_id, state, phase, expires_at, total, order_ref, failed_phase, error_code, error_message
FROM checkout.locks WHERE lock_id = :lid;
