CREATE TABLE IF NOT EXISTS {{ schema | ident }}.reputation_signal_snapshots (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "subject_did" text NOT NULL,
    "signals" jsonb NOT NULL,
    "signals_version" text NOT NULL,
    "computed_at" timestamp DEFAULT now()
)
