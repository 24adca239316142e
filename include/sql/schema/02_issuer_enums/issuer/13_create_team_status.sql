-- CREATE TYPE has no IF NOT EXISTS: a second run finds the type and does nothing.
DO $create_enum$
BEGIN
    CREATE TYPE {{ schema | ident }}.team_status AS ENUM ('Active', 'Pending', 'Inactive');
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$create_enum$
