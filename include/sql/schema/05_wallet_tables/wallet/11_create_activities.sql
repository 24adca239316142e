CREATE TABLE IF NOT EXISTS {{ schema | ident }}.activities (
    "id" serial PRIMARY KEY,
    "user_id" integer NOT NULL,
    "type" text NOT NULL,
    "description" text NOT NULL,
    "timestamp" timestamp DEFAULT now()
)
