-- CREATE TYPE has no IF NOT EXISTS: a second run finds the type and does nothing.
DO $create_enum$
BEGIN
    CREATE TYPE {{ schema | ident }}.verification_status AS ENUM ('success', 'failed', 'suspicious');
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$create_enum$
