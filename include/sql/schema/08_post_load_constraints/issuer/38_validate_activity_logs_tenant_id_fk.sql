-- Validating an already valid constraint is a no-op, so a second run is harmless.
ALTER TABLE {{ schema | ident }}.activity_logs VALIDATE CONSTRAINT activity_logs_tenant_id_tenants_id_fk
