-- The migrated tables the app role can still write, by effective privilege: information_schema
-- would show a non-owner only the grants it made, hiding the owner's.
SELECT count(*) FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND c.relname = ANY (%(tables)s)
  AND has_table_privilege(%(app_role)s, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
