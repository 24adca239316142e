-- The planner's row estimate (-1 before the first ANALYZE) and the total size; no row when the table does not exist.
SELECT c.reltuples::bigint, pg_total_relation_size(c.oid)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p')
