-- CREATE TYPE has no IF NOT EXISTS: a second run finds the type and does nothing.
DO $create_enum$
BEGIN
    CREATE TYPE {{ schema | ident }}.reputation_category AS ENUM ('transport', 'accommodation', 'delivery', 'employment', 'finance', 'social', 'identity');
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$create_enum$
