-- CREATE TYPE has no IF NOT EXISTS: a second run finds the type and does nothing.
DO $create_enum$
BEGIN
    CREATE TYPE {{ schema | ident }}.reputation_vertical AS ENUM ('overall', 'work', 'safe_date', 'gig', 'rental', 'health', 'education', 'finance', 'identity');
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$create_enum$
