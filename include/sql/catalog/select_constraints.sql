SELECT c.relname, con.conname, con.contype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord)::text[] AS columns,
       rn.nspname AS ref_schema, rc.relname AS ref_table,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord)::text[] AS ref_columns,
       con.confupdtype, con.confdeltype, con.confmatchtype,
       con.convalidated, con.condeferrable, con.condeferred,
       CASE WHEN con.contype IN ('c', 'x') THEN pg_get_constraintdef(con.oid) END AS definition
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE n.nspname = %(schema)s AND con.contype IN ('p', 'u', 'f', 'c', 'x')
ORDER BY c.relname, con.conname
