-- NOT VALID: existing rows are checked by the next file, which locks writers out for less time.
DO $add_constraint$
BEGIN
    ALTER TABLE {{ schema | ident }}.credentials
        ADD CONSTRAINT credentials_issuer_id_issuers_id_fk
        FOREIGN KEY ("issuer_id") REFERENCES {{ schema | ident }}.issuers ("id") NOT VALID;
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$add_constraint$
