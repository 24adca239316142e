-- Every finished run with the tables it recorded clean in its own direction.
SELECT o.run_id, o.direction, o.finished_at, o.tables_in_scope, o.tables_errored,
       coalesce(array_agg(r.table_name) FILTER (WHERE r.clean AND r.direction = o.direction), '{}') AS tables_clean
FROM {{ outcomes | ident }} AS o
LEFT JOIN {{ runs | ident }} AS r ON r.run_id = o.run_id
GROUP BY o.run_id
