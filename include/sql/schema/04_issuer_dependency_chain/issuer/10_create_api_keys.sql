CREATE TABLE IF NOT EXISTS {{ schema | ident }}.api_keys (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "tenant_id" uuid NOT NULL,
    "key_hash" text NOT NULL,
    "permissions" jsonb DEFAULT '[]'::jsonb,
    "created_at" timestamp DEFAULT now(),
    "expires_at" timestamp
)
