-- One row when the table exists. pg_class alone: unlike a size function, it takes no lock on the
-- table, so a check never waits behind a session holding the table (a flag store locked mid-flip).
SELECT 1
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p')
