CREATE TABLE IF NOT EXISTS {{ schema | ident }}.verification_logs (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "tenant_id" uuid NOT NULL,
    "credential_id" uuid,
    "verifier_name" text NOT NULL,
    "verifier_location" text,
    "ip_address" text,
    "status" {{ schema | ident }}.verification_status DEFAULT 'success'::{{ schema | ident }}.verification_status,
    "reason" text,
    "timestamp" timestamp DEFAULT now()
)
