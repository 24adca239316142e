-- The newest snapshot of this source still held by any run: one a new run can adopt.
SELECT run_id, snapshot_id, lsn, xmin_horizon, backend_pid, holder, taken_at
FROM {{ source_snapshots | ident }}
WHERE service = %(service)s AND state = 'holding'
ORDER BY taken_at DESC
LIMIT 1
