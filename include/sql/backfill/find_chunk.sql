SELECT mode, rows, copies, run_id, copied_at FROM {{ backfill_chunks }} WHERE chunk_id = %(chunk_id)s
