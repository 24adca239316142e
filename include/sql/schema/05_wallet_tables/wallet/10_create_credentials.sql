CREATE TABLE IF NOT EXISTS {{ schema | ident }}.credentials (
    "id" serial PRIMARY KEY,
    "user_id" integer NOT NULL,
    "type" jsonb NOT NULL,
    "issuer" text NOT NULL,
    "issuance_date" timestamp NOT NULL,
    "data" jsonb NOT NULL,
    "jwt" text,
    "is_archived" boolean DEFAULT false
)
