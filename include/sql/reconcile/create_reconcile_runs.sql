-- One row per reconcile run and table: the trend of drift over the soak.
CREATE TABLE IF NOT EXISTS {{ runs | ident }} (
    run_id text NOT NULL,
    table_name text NOT NULL,
    direction text NOT NULL,
    checked_rows bigint NOT NULL,
    drifted integer NOT NULL,
    repaired integer NOT NULL,
    in_flight integer NOT NULL,
    settled integer NOT NULL,
    unrepaired integer NOT NULL,
    cap_exceeded boolean NOT NULL,
    clean boolean NOT NULL,
    seconds double precision NOT NULL,
    finished_at timestamptz NOT NULL,
    PRIMARY KEY (run_id, table_name)
)
