CREATE TABLE IF NOT EXISTS {{ schema | ident }}.reputation_share_grants (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "subject_did" text NOT NULL,
    "grantee_id" text NOT NULL,
    "purpose" text NOT NULL,
    "data_elements" jsonb DEFAULT '[]'::jsonb,
    "expires_at" timestamp NOT NULL,
    "revoked_at" timestamp,
    "created_at" timestamp DEFAULT now()
)
