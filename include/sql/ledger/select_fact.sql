SELECT value, recorded_at, dag_id, run_id FROM {{ facts }} WHERE key = %(key)s
