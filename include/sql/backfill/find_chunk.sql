SELECT mode, rows, copies, run_id, copied_at, source_snapshot FROM {{ backfill_chunks | ident }} WHERE chunk_id = %(chunk_id)s
