SELECT xmin_horizon, synced_at, run_id FROM {{ sync_points | ident }} WHERE table_name = %(table_name)s
