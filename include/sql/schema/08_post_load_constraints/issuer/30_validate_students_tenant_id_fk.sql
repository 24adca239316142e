-- Validating an already valid constraint is a no-op, so a second run is harmless.
ALTER TABLE {{ schema | ident }}.students VALIDATE CONSTRAINT students_tenant_id_tenants_id_fk
