CREATE TABLE IF NOT EXISTS {{ schema | ident }}.platform_connections (
    "id" serial PRIMARY KEY,
    "user_id" integer NOT NULL,
    "platform_id" varchar(100) NOT NULL,
    "platform_name" text NOT NULL,
    "status" varchar(20) NOT NULL DEFAULT 'pending',
    "oauth_access_token" text,
    "oauth_refresh_token" text,
    "scopes" text,
    "connected_at" timestamp,
    "last_synced_at" timestamp,
    "created_at" timestamp DEFAULT now()
)
