UPDATE {{ source_snapshots }} SET state = 'released', released_at = clock_timestamp()
WHERE run_id = %(run_id)s AND state = 'holding'
