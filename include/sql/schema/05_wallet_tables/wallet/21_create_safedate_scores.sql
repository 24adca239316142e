CREATE TABLE IF NOT EXISTS {{ schema | ident }}.safedate_scores (
    "id" serial PRIMARY KEY,
    "user_id" integer NOT NULL,
    "score" integer NOT NULL DEFAULT 50,
    "trust_level" varchar(20),
    "inputs" jsonb,
    "calculated_at" timestamp DEFAULT now()
)
