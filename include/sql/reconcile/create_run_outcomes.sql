-- One row per finished reconcile run: what it set out to check and which table tasks errored.
-- With the per-table rows of reconcile_runs, what the cutover and finalize gates judge a run by.
CREATE TABLE IF NOT EXISTS {{ outcomes | ident }} (
    run_id text PRIMARY KEY,
    direction text NOT NULL CHECK (direction IN ('source_to_target', 'target_to_source')),
    tables_in_scope text[] NOT NULL,
    tables_errored text[] NOT NULL,
    finished_at timestamptz NOT NULL
)
