CREATE TABLE IF NOT EXISTS {{ schema | ident }}.reputation_scores (
    "id" serial PRIMARY KEY,
    "user_id" integer NOT NULL,
    "raw_score" integer NOT NULL DEFAULT 500,
    "normalized_score" integer NOT NULL DEFAULT 500,
    "category_breakdown" jsonb,
    "event_count" integer NOT NULL DEFAULT 0,
    "last_calculated_at" timestamp DEFAULT now(),
    "updated_at" timestamp DEFAULT now()
)
