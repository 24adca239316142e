-- ADD CONSTRAINT has no IF NOT EXISTS: a second run finds the constraint's index and does nothing.
DO $add_constraint$
BEGIN
    ALTER TABLE {{ schema | ident }}.platform_authorities ADD CONSTRAINT platform_authorities_platform_id_unique UNIQUE ("platform_id");
EXCEPTION
    WHEN duplicate_table OR duplicate_object THEN NULL;
END
$add_constraint$
