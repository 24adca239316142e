-- One row per backfill run and source database: the snapshot every chunk of that
-- database reads at, where it stands in the source's history, and who holds it open.
CREATE TABLE IF NOT EXISTS {{ source_snapshots | ident }} (
    run_id text NOT NULL,
    service text NOT NULL,
    state text NOT NULL CHECK (state IN ('holding', 'released', 'lost', 'expired', 'failed')),
    snapshot_id text,
    lsn text,
    xmin_horizon bigint,
    backend_pid integer,
    holder text,
    error text,
    taken_at timestamptz,
    released_at timestamptz,
    PRIMARY KEY (run_id, service)
)
