CREATE TABLE IF NOT EXISTS {{ schema | ident }}.users (
    "id" varchar PRIMARY KEY DEFAULT gen_random_uuid(),
    "username" text NOT NULL,
    "password" text NOT NULL
)
