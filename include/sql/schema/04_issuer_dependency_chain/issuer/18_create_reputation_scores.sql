CREATE TABLE IF NOT EXISTS {{ schema | ident }}.reputation_scores (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "subject_did" text NOT NULL,
    "vertical" {{ schema | ident }}.reputation_vertical DEFAULT 'overall'::{{ schema | ident }}.reputation_vertical,
    "score" integer NOT NULL,
    "event_count" integer NOT NULL,
    "breakdown" jsonb DEFAULT '[]'::jsonb,
    "computed_at" timestamp DEFAULT now()
)
