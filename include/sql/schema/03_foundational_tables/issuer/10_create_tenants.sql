CREATE TABLE IF NOT EXISTS {{ schema | ident }}.tenants (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "name" text NOT NULL,
    "plan" text DEFAULT 'free',
    "created_at" timestamp DEFAULT now()
)
