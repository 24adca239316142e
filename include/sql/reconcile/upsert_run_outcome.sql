INSERT INTO {{ outcomes | ident }} (run_id, direction, tables_in_scope, tables_errored, finished_at)
VALUES (%(run_id)s, %(direction)s, %(tables_in_scope)s, %(tables_errored)s, now())
ON CONFLICT (run_id) DO UPDATE SET
    direction = EXCLUDED.direction, tables_in_scope = EXCLUDED.tables_in_scope,
    tables_errored = EXCLUDED.tables_errored, finished_at = EXCLUDED.finished_at
