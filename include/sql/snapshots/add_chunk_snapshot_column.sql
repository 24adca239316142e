-- Which source snapshot a chunk was read at: a chunk read at another one is copied again.
ALTER TABLE {{ backfill_chunks | ident }} ADD COLUMN IF NOT EXISTS source_snapshot text
