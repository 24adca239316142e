CREATE TABLE IF NOT EXISTS {{ schema | ident }}.issuers (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "tenant_id" uuid NOT NULL,
    "name" text NOT NULL,
    "domain" text NOT NULL,
    "did" text,
    "trust_status" {{ schema | ident }}.trust_status DEFAULT 'pending'::{{ schema | ident }}.trust_status,
    "meta" jsonb,
    "created_at" timestamp DEFAULT now()
)
