CREATE TABLE IF NOT EXISTS {{ schema | ident }}.students (
    "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "tenant_id" uuid NOT NULL,
    "name" text NOT NULL,
    "email" text NOT NULL,
    "student_id" text NOT NULL,
    "program" text NOT NULL,
    "enrollment_year" text NOT NULL,
    "status" {{ schema | ident }}.student_status DEFAULT 'Active'::{{ schema | ident }}.student_status,
    "created_at" timestamp DEFAULT now()
)
