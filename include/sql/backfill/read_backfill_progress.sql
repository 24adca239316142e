-- Per table: chunks recorded, rows and bytes copied, the wall time from the first chunk's
-- start to the last chunk's end, and when the last chunk landed.
SELECT table_name,
       count(*) AS chunks_done,
       sum(rows)::bigint AS rows,
       sum(bytes)::bigint AS bytes,
       extract(epoch FROM max(copied_at) - min(copied_at - make_interval(secs => seconds)))::float8 AS wall_seconds,
       max(copied_at) AS last_copied_at
FROM {{ backfill_chunks | ident }}
GROUP BY table_name
