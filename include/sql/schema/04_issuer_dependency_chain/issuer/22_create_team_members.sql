CREATE TABLE IF NOT EXISTS {{ schema }}.team_members (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "tenant_id" uuid NOT NULL,
    "name" text NOT NULL,
    "email" text NOT NULL,
    "role" {{ schema }}.team_role DEFAULT 'Viewer'::{{ schema }}.team_role,
    "status" {{ schema }}.team_status DEFAULT 'Pending'::{{ schema }}.team_status,
    "invited_at" timestamp DEFAULT now(),
    "joined_at" timestamp
)
