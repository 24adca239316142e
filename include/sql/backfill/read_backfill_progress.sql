SELECT table_name,
       count(*) AS chunks_done,
       sum(rows) AS rows,
       sum(bytes) AS bytes,
       extract(epoch FROM max(copied_at) - min(copied_at - make_interval(secs => seconds))) AS wall_seconds
FROM {{ backfill_chunks | ident }}
GROUP BY table_name
