SELECT service, state, snapshot_id, lsn, xmin_horizon, backend_pid, holder, error, taken_at, released_at,
       extract(epoch FROM coalesce(released_at, clock_timestamp()) - taken_at)::double precision AS held_seconds
FROM {{ source_snapshots | ident }}
WHERE run_id = %(run_id)s
ORDER BY service
