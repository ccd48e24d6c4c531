-- bench-long: what the application's backends wait on, sampled every 50 ms
-- for :samples samples from one session (pg_stat_clear_snapshot, so each
-- sample is fresh); prints the share of each (call, wait) among all samples of
-- active bench_app backends.  The call is named by its statement's first words.
CREATE TEMP TABLE wait_samples (call text, wait text);
SELECT set_config('bench.samples', :'samples', false) \gset
DO $$
BEGIN
    FOR i IN 1 .. current_setting('bench.samples')::int LOOP
        PERFORM pg_stat_clear_snapshot();
        INSERT INTO wait_samples
        SELECT CASE WHEN query LIKE '%checkout_start%' THEN 'start'
                    WHEN query LIKE '%price_lock%' THEN 'advance to price_lock'
                    WHEN query LIKE '%stock_commit%' THEN 'capture to stock_commit'
                    WHEN query LIKE '%checkout_advance%' THEN 'authorise'
                    ELSE left(regexp_replace(query, '\s+', ' ', 'g'), 30) END,
               coalesce(wait_event_type || ':' || wait_event, 'running (CPU)')
        FROM pg_stat_activity
        WHERE usename = 'bench_app' AND state = 'active';
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT format('%5s%%  %-24s %s', round(100.0 * count(*) / sum(count(*)) OVER (), 1), call, wait)
FROM wait_samples GROUP BY call, wait ORDER BY count(*) DESC LIMIT 10;
