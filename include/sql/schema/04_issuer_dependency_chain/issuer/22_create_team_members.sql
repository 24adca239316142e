CREATE TABLE IF NOT EXISTS {{ schema | ident }}.team_members (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "tenant_id" uuid NOT NULL,
    "name" text NOT NULL,
    "email" text NOT NULL,
    "role" {{ schema | ident }}.team_role DEFAULT 'Viewer'::{{ schema | ident }}.team_role,
    "status" {{ schema | ident }}.team_status DEFAULT 'Pending'::{{ schema | ident }}.team_status,
    "invited_at" timestamp DEFAULT now(),
    "joined_at" timestamp
)
