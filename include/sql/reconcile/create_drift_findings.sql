-- One row per drifted key found by a reconcile run; keys and row hashes only, never values.
CREATE TABLE IF NOT EXISTS {{ findings | ident }} (
    run_id text NOT NULL,
    table_name text NOT NULL,
    key text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('missing_in_target', 'extra_in_target', 'values_differ')),
    repaired boolean NOT NULL,
    in_flight boolean NOT NULL,
    source_hash bigint,
    target_hash bigint,
    direction text NOT NULL CHECK (direction IN ('source_to_target', 'target_to_source')),
    found_at timestamptz NOT NULL,
    repaired_at timestamptz,
    PRIMARY KEY (run_id, table_name, key)
)
