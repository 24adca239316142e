INSERT INTO {{ backfill_chunks | ident }} AS c (
    chunk_id, table_name, lower_bound, upper_bound, label, mode, copy_format,
    rows, bytes, inserted, updated, deleted, seconds, run_id, source_snapshot, pacing
) VALUES (
    %(chunk_id)s, %(table_name)s, %(lower_bound)s, %(upper_bound)s, %(label)s, %(mode)s, %(copy_format)s,
    %(rows)s, %(bytes)s, %(inserted)s, %(updated)s, %(deleted)s, %(seconds)s, %(run_id)s, %(source_snapshot)s, %(pacing)s
)
ON CONFLICT (chunk_id) DO UPDATE SET
    mode = excluded.mode, copy_format = excluded.copy_format, rows = excluded.rows, bytes = excluded.bytes,
    inserted = excluded.inserted, updated = excluded.updated, deleted = excluded.deleted,
    seconds = excluded.seconds, run_id = excluded.run_id, copied_at = excluded.copied_at,
    source_snapshot = excluded.source_snapshot, pacing = excluded.pacing,
    copies = c.copies + 1
