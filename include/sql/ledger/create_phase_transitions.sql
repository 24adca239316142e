CREATE TABLE IF NOT EXISTS {{ phase_transitions | ident }} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phase text NOT NULL,
    previous_phase text,
    dag_id text NOT NULL,
    run_id text NOT NULL,
    actor text NOT NULL DEFAULT current_user,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    details jsonb NOT NULL DEFAULT '{}'::jsonb
)
