-- ADD CONSTRAINT has no IF NOT EXISTS: a second run finds the constraint's index and does nothing.
DO $add_constraint$
BEGIN
    ALTER TABLE {{ schema | ident }}.reputation_scores ADD CONSTRAINT reputation_scores_user_id_unique UNIQUE ("user_id");
EXCEPTION
    WHEN duplicate_table OR duplicate_object THEN NULL;
END
$add_constraint$
