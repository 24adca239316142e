-- A run marked failed by hand never reaches its release task: the next run ends its snapshots.
UPDATE {{ source_snapshots | ident }} SET state = 'released', released_at = clock_timestamp()
WHERE run_id <> %(run_id)s AND state = 'holding'
