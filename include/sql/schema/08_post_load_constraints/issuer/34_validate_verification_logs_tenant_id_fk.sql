-- Validating an already valid constraint is a no-op, so a second run is harmless.
ALTER TABLE {{ schema | ident }}.verification_logs VALIDATE CONSTRAINT verification_logs_tenant_id_tenants_id_fk
