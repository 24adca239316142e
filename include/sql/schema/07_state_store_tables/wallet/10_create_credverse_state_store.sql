-- The apps create this table unqualified at start-up; it must exist in each
-- service's own schema, where that service's search_path finds it first.
CREATE TABLE IF NOT EXISTS {{ schema | ident }}.credverse_state_store (
    "service_key" text PRIMARY KEY,
    "payload" jsonb NOT NULL,
    "updated_at" timestamptz NOT NULL DEFAULT now()
)
