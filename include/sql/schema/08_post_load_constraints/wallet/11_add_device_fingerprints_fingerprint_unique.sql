-- ADD CONSTRAINT has no IF NOT EXISTS: a second run finds the constraint's index and does nothing.
DO $add_constraint$
BEGIN
    ALTER TABLE {{ schema | ident }}.device_fingerprints ADD CONSTRAINT device_fingerprints_fingerprint_unique UNIQUE ("fingerprint");
EXCEPTION
    WHEN duplicate_table OR duplicate_object THEN NULL;
END
$add_constraint$
