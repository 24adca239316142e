CREATE TABLE IF NOT EXISTS {{ schema }}.reputation_scores (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "subject_did" text NOT NULL,
    "vertical" {{ schema }}.reputation_vertical DEFAULT 'overall'::{{ schema }}.reputation_vertical,
    "score" integer NOT NULL,
    "event_count" integer NOT NULL,
    "breakdown" jsonb DEFAULT '[]'::jsonb,
    "computed_at" timestamp DEFAULT now()
)
