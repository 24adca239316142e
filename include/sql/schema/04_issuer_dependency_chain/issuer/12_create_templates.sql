CREATE TABLE IF NOT EXISTS {{ schema | ident }}.templates (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "tenant_id" uuid NOT NULL,
    "name" text NOT NULL,
    "schema" jsonb NOT NULL,
    "render" text NOT NULL,
    "version" text DEFAULT '1.0.0',
    "disclosure" jsonb DEFAULT '{}'::jsonb,
    "created_at" timestamp DEFAULT now()
)
