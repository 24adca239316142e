CREATE TABLE IF NOT EXISTS {{ schema | ident }}.trust_score_snapshots (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "user_id" uuid NOT NULL,
    "score" integer NOT NULL,
    "signals_version" text NOT NULL,
    "features_hash" text NOT NULL,
    "model_version" text NOT NULL,
    "explanation_json" jsonb NOT NULL,
    "decay_applied_at" timestamp,
    "created_at" timestamp DEFAULT now()
)
