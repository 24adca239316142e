-- Validating an already valid constraint is a no-op, so a second run is harmless.
ALTER TABLE {{ schema | ident }}.credentials VALIDATE CONSTRAINT credentials_issuer_id_issuers_id_fk
