CREATE TABLE IF NOT EXISTS {{ schema | ident }}.device_fingerprints (
    "id" serial PRIMARY KEY,
    "user_id" integer NOT NULL,
    "fingerprint" text NOT NULL,
    "ip_address" text,
    "user_agent" text,
    "created_at" timestamp DEFAULT now(),
    "last_seen_at" timestamp DEFAULT now()
)
