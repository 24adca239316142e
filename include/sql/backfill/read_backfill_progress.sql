-- Per table: chunks recorded, rows and bytes copied, the wall time from the first chunk's
-- start to the last chunk's end, when the last chunk landed, and what the load-aware pacer did
-- over the chunks it paced (seconds paused, rate cuts, the slowest rate, the highest probe latency
-- against the budget).
SELECT table_name,
       count(*) AS chunks_done,
       sum(rows)::bigint AS rows,
       sum(bytes)::bigint AS bytes,
       extract(epoch FROM max(copied_at) - min(copied_at - make_interval(secs => seconds)))::float8 AS wall_seconds,
       max(copied_at) AS last_copied_at,
       sum((pacing ->> 'paused_s')::float8) AS paused_s,
       sum((pacing ->> 'cuts')::int)::int AS pacing_cuts,
       min((pacing ->> 'slowest_mb_per_s')::float8) AS slowest_mb_per_s,
       max((pacing ->> 'highest_probe_ms')::float8) AS highest_probe_ms,
       max((pacing ->> 'budget_probe_ms')::float8) AS budget_probe_ms
FROM {{ backfill_chunks | ident }}
GROUP BY table_name
