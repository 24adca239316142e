-- Generated keys are 1..n, so the next key the apps take is n + 1.
SELECT setval(seq, (SELECT count(*) FROM {{ table | ident }}) + 1, false)
FROM pg_get_serial_sequence(format('%%I.%%I', %(schema_name)s::text, %(table_name)s::text), %(key_name)s) AS seq
WHERE seq IS NOT NULL
