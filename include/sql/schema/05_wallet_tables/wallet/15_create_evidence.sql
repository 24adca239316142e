CREATE TABLE IF NOT EXISTS {{ schema | ident }}.evidence (
    "id" serial PRIMARY KEY,
    "user_id" integer NOT NULL,
    "claim_id" integer,
    "media_type" varchar(20),
    "storage_url" text,
    "authenticity_score" integer,
    "is_ai_generated" boolean,
    "manipulation_detected" boolean,
    "metadata" jsonb,
    "blockchain_hash" varchar(66),
    "analysis_data" jsonb,
    "uploaded_at" timestamp DEFAULT now(),
    "analyzed_at" timestamp
)
