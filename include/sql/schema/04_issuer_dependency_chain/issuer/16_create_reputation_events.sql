CREATE TABLE IF NOT EXISTS {{ schema | ident }}.reputation_events (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "event_id" text,
    "subject_did" text NOT NULL,
    "platform_id" text NOT NULL,
    "category" {{ schema | ident }}.reputation_category NOT NULL,
    "signal_type" text NOT NULL,
    "score" integer NOT NULL,
    "occurred_at" timestamp NOT NULL,
    "metadata" jsonb DEFAULT '{}'::jsonb,
    "created_at" timestamp DEFAULT now()
)
