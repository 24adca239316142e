CREATE TABLE IF NOT EXISTS {{ schema | ident }}.activity_logs (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "tenant_id" uuid NOT NULL,
    "type" text NOT NULL,
    "title" text NOT NULL,
    "description" text,
    "metadata" jsonb,
    "timestamp" timestamp DEFAULT now()
)
