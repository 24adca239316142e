CREATE TABLE IF NOT EXISTS {{ schema | ident }}.template_designs (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "tenant_id" uuid NOT NULL,
    "name" text NOT NULL,
    "category" text,
    "type" text,
    "status" text DEFAULT 'Draft',
    "fields" jsonb DEFAULT '[]'::jsonb,
    "background_color" text DEFAULT '#ffffff',
    "width" integer DEFAULT 842,
    "height" integer DEFAULT 595,
    "created_at" timestamp DEFAULT now(),
    "updated_at" timestamp DEFAULT now()
)
