-- Whether any run still needs this snapshot: a new run may have adopted it from the one that took it.
SELECT EXISTS (
    SELECT 1 FROM {{ source_snapshots | ident }} WHERE service = %(service)s AND snapshot_id = %(snapshot_id)s AND state = 'holding'
)
