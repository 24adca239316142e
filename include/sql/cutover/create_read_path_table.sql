-- The flag store the apps read: which side serves reads, and whether dual-write is on.
CREATE TABLE IF NOT EXISTS {{ control_schema | ident }}.read_path (
    service      text PRIMARY KEY,
    primary_side text NOT NULL DEFAULT 'source' CHECK (primary_side IN ('source', 'target')),
    dual_write   boolean NOT NULL DEFAULT false,
    changed_at   timestamptz NOT NULL DEFAULT now(),
    changed_by   text NOT NULL
)
