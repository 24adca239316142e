CREATE TABLE IF NOT EXISTS {{ schema | ident }}.reputation_events (
    "id" serial PRIMARY KEY,
    "user_id" integer NOT NULL,
    "event_id" text NOT NULL,
    "platform" text NOT NULL,
    "category" varchar(50) NOT NULL,
    "signal_type" text NOT NULL,
    "score" integer NOT NULL,
    "weight" integer NOT NULL,
    "decay_factor" numeric(5,4),
    "metadata" jsonb,
    "event_date" timestamp NOT NULL,
    "created_at" timestamp DEFAULT now()
)
