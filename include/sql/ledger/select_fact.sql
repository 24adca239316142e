SELECT value, recorded_at, dag_id, run_id FROM {{ facts | ident }} WHERE key = %(key)s
