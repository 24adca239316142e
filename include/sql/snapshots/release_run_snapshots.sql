UPDATE {{ source_snapshots | ident }} SET state = 'released', released_at = clock_timestamp()
WHERE run_id = %(run_id)s AND state = 'holding'
