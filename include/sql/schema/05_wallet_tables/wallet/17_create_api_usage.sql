CREATE TABLE IF NOT EXISTS {{ schema | ident }}.api_usage (
    "id" serial PRIMARY KEY,
    "user_id" integer,
    "platform_api_key" text,
    "endpoint" text NOT NULL,
    "month" varchar(7) NOT NULL,
    "count" integer NOT NULL DEFAULT 0,
    "last_recorded_at" timestamp DEFAULT now()
)
