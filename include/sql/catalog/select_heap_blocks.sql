-- The table's main fork in blocks (0 for a partitioned parent, which holds no rows itself); no row when the table does not exist.
SELECT pg_relation_size(c.oid) / current_setting('block_size')::int
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p')
