-- The oldest snapshot any chunk of the table was read at; NULL when a chunk was read at none.
SELECT CASE WHEN bool_and(s.xmin_horizon IS NOT NULL) THEN min(s.xmin_horizon) END, max(s.taken_at)
FROM {{ backfill_chunks | ident }} AS c
LEFT JOIN {{ source_snapshots | ident }} AS s ON s.snapshot_id = c.source_snapshot AND s.service = %(service)s
WHERE c.table_name = %(table_name)s
