CREATE TABLE IF NOT EXISTS {{ facts | ident }} (
    key text PRIMARY KEY,
    value jsonb NOT NULL,
    dag_id text NOT NULL,
    run_id text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
