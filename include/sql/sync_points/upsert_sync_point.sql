INSERT INTO {{ sync_points | ident }} (table_name, xmin_horizon, dag_id, run_id)
VALUES (%(table_name)s, %(xmin_horizon)s, %(dag_id)s, %(run_id)s)
ON CONFLICT (table_name) DO UPDATE SET
    xmin_horizon = excluded.xmin_horizon, synced_at = clock_timestamp(), dag_id = excluded.dag_id, run_id = excluded.run_id
