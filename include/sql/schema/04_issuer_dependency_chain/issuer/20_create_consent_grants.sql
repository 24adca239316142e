CREATE TABLE IF NOT EXISTS {{ schema | ident }}.consent_grants (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "subject_id" uuid NOT NULL,
    "verifier_id" text NOT NULL,
    "purpose" text NOT NULL,
    "data_elements" jsonb DEFAULT '[]'::jsonb,
    "expiry" timestamp NOT NULL,
    "revocation_ts" timestamp,
    "consent_proof" jsonb NOT NULL,
    "created_at" timestamp DEFAULT now()
)
