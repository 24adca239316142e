-- What the load-aware pacer decided while the chunk streamed (probe latencies, cuts, pauses); null when off.
ALTER TABLE {{ backfill_chunks | ident }} ADD COLUMN IF NOT EXISTS pacing jsonb
