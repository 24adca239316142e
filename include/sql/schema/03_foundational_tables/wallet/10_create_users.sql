CREATE TABLE IF NOT EXISTS {{ schema | ident }}.users (
    "id" serial PRIMARY KEY,
    "username" text NOT NULL,
    "password" text NOT NULL,
    "did" text,
    "name" text,
    "email" text,
    "bio" text,
    "avatar_url" text,
    "phone_number" text,
    "phone_verified" boolean DEFAULT false,
    "email_verified" boolean DEFAULT false
)
