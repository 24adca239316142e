-- Validating an already valid constraint is a no-op, so a second run is harmless.
ALTER TABLE {{ schema }}.credentials VALIDATE CONSTRAINT credentials_issuer_id_issuers_id_fk
