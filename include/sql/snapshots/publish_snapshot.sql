INSERT INTO {{ source_snapshots | ident }} (run_id, service, state, snapshot_id, lsn, xmin_horizon, backend_pid, holder, error, taken_at, released_at)
VALUES (%(run_id)s, %(service)s, %(state)s, %(snapshot_id)s, %(lsn)s, %(xmin_horizon)s, %(backend_pid)s, %(holder)s, %(error)s,
        CASE WHEN %(state)s = 'holding' THEN coalesce(%(taken_at)s, clock_timestamp()) END, NULL)
ON CONFLICT (run_id, service) DO UPDATE SET
    state = excluded.state, snapshot_id = excluded.snapshot_id, lsn = excluded.lsn, xmin_horizon = excluded.xmin_horizon,
    backend_pid = excluded.backend_pid, holder = excluded.holder, error = excluded.error,
    taken_at = excluded.taken_at, released_at = NULL
