-- Every run's row naming this snapshot: a run that adopted it sees it end too.
UPDATE {{ source_snapshots | ident }}
SET state = %(state)s, error = coalesce(%(error)s, error), released_at = clock_timestamp()
WHERE service = %(service)s AND snapshot_id = %(snapshot_id)s AND state = 'holding'
