-- One row per chunk copied: written in the same transaction as the chunk's rows,
-- so a chunk is either present and recorded, or absent and unrecorded.
CREATE TABLE IF NOT EXISTS {{ backfill_chunks | ident }} (
    chunk_id text PRIMARY KEY,
    table_name text NOT NULL,
    lower_bound text,
    upper_bound text,
    label text NOT NULL,
    mode text NOT NULL CHECK (mode IN ('copy', 'merge')),
    copy_format text NOT NULL CHECK (copy_format IN ('binary', 'text')),
    rows bigint NOT NULL,
    bytes bigint NOT NULL,
    inserted bigint NOT NULL,
    updated bigint NOT NULL,
    deleted bigint NOT NULL,
    seconds double precision NOT NULL,
    copies integer NOT NULL DEFAULT 1,
    run_id text NOT NULL,
    copied_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
