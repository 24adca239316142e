-- ADD CONSTRAINT has no IF NOT EXISTS: a second run finds the constraint's index and does nothing.
DO $add_constraint$
BEGIN
    ALTER TABLE {{ schema | ident }}.reputation_events ADD CONSTRAINT reputation_events_event_id_unique UNIQUE ("event_id");
EXCEPTION
    WHEN duplicate_table OR duplicate_object THEN NULL;
END
$add_constraint$
