INSERT INTO {{ facts | ident }} (key, value, dag_id, run_id)
VALUES (%(key)s, %(value)s, %(dag_id)s, %(run_id)s)
ON CONFLICT (key) DO UPDATE
SET value = EXCLUDED.value, dag_id = EXCLUDED.dag_id, run_id = EXCLUDED.run_id, recorded_at = clock_timestamp()
