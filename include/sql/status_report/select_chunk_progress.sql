-- Per table: chunks recorded, rows and bytes copied, and when the last chunk landed.
SELECT table_name, count(*) AS chunks_done, sum(rows)::bigint AS rows, sum(bytes)::bigint AS bytes, max(copied_at) AS last_copied_at
FROM {{ backfill_chunks | ident }}
GROUP BY table_name
