CREATE TABLE IF NOT EXISTS {{ schema | ident }}.users (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "tenant_id" uuid,
    "username" text NOT NULL,
    "password" text NOT NULL,
    "role" text DEFAULT 'user',
    "created_at" timestamp DEFAULT now()
)
