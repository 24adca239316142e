-- Drift per reconcile run over the soak, oldest first: the latest %(runs)s runs, all tables summed.
SELECT run_id, finished_at, tables_checked, drifted, repaired, in_flight, unrepaired, clean, cap_exceeded, direction
FROM (
    SELECT run_id,
           max(finished_at) AS finished_at,
           count(*) AS tables_checked,
           sum(drifted)::bigint AS drifted,
           sum(repaired)::bigint AS repaired,
           sum(in_flight)::bigint AS in_flight,
           sum(unrepaired)::bigint AS unrepaired,
           bool_and(clean) AS clean,
           bool_or(cap_exceeded) AS cap_exceeded,
           string_agg(DISTINCT direction, ', ') AS direction
    FROM {{ runs | ident }}
    GROUP BY run_id
    ORDER BY max(finished_at) DESC, run_id DESC
    LIMIT %(runs)s
) AS latest
ORDER BY finished_at, run_id
