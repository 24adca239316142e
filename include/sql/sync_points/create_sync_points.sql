-- Per table, the source's xmin horizon at the start of the last catch-up pass that left nothing
-- behind: a source row version below it was already level on the target, so drift on it is unexplained.
CREATE TABLE IF NOT EXISTS {{ sync_points | ident }} (
    table_name text PRIMARY KEY,
    xmin_horizon bigint NOT NULL,
    synced_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    dag_id text NOT NULL,
    run_id text NOT NULL
)
