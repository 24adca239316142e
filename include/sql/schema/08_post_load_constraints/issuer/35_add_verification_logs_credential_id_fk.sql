-- NOT VALID: existing rows are checked by the next file, which locks writers out for less time.
DO $add_constraint$
BEGIN
    ALTER TABLE {{ schema | ident }}.verification_logs
        ADD CONSTRAINT verification_logs_credential_id_credentials_id_fk
        FOREIGN KEY ("credential_id") REFERENCES {{ schema | ident }}.credentials ("id") NOT VALID;
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$add_constraint$
