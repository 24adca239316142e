-- Consecutive clean runs, newest first: a run is clean when every table it checked was clean.
-- The cutover gate reads consecutive_clean_runs (and tables_checked of the runs it counts).
CREATE OR REPLACE VIEW {{ streak_view | ident }} AS
WITH per_run AS (
    SELECT run_id, max(finished_at) AS finished_at, count(*) AS tables_checked, bool_and(clean) AS clean
    FROM {{ runs | ident }}
    GROUP BY run_id
),
last_unclean AS (
    SELECT max(finished_at) AS at FROM per_run WHERE NOT clean
)
SELECT
    count(*) FILTER (WHERE per_run.clean AND (last_unclean.at IS NULL OR per_run.finished_at > last_unclean.at)) AS consecutive_clean_runs,
    min(per_run.finished_at) FILTER (WHERE per_run.clean AND (last_unclean.at IS NULL OR per_run.finished_at > last_unclean.at)) AS clean_since,
    max(per_run.finished_at) AS last_run_at,
    last_unclean.at AS last_unclean_at
FROM per_run CROSS JOIN last_unclean
GROUP BY last_unclean.at
