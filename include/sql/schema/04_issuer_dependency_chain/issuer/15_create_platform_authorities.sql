CREATE TABLE IF NOT EXISTS {{ schema | ident }}.platform_authorities (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "tenant_id" uuid,
    "platform_id" text NOT NULL,
    "name" text NOT NULL,
    "domain" text,
    "status" {{ schema | ident }}.platform_authority_status DEFAULT 'pending'::{{ schema | ident }}.platform_authority_status,
    "allowed_verticals" jsonb DEFAULT '[]'::jsonb,
    "allowed_categories" jsonb DEFAULT '[]'::jsonb,
    "created_at" timestamp DEFAULT now()
)
