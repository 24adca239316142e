-- Columns in table order: every table of a schema (no table given; partitions are read through
-- their parent) or one named table. Binary COPY writes element/field type OIDs into arrays,
-- composites and ranges, which record_recv/array_recv may reject (user-defined OIDs differ per
-- database): such columns are flagged so their tables are copied as text.
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), t.typname, a.atttypmod, a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       (b.typcategory = 'A' AND b.typelem >= 16384) OR (b.typtype IN ('c', 'r', 'm') AND b.oid >= 16384),
       coalesce((SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '{}'),
       EXISTS (SELECT 1 FROM pg_constraint k
               WHERE k.conrelid = a.attrelid AND k.contype IN ('u', 'p') AND k.conkey = ARRAY[a.attnum]),
       (SELECT p.relname FROM pg_constraint k JOIN pg_class p ON p.oid = k.confrelid
        WHERE k.conrelid = a.attrelid AND k.contype = 'f' AND k.conkey = ARRAY[a.attnum] LIMIT 1)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')
  AND (c.relname = %(table)s OR %(table)s::text IS NULL AND NOT c.relispartition)
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
