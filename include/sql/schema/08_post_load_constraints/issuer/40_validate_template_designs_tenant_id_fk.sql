-- Validating an already valid constraint is a no-op, so a second run is harmless.
ALTER TABLE {{ schema | ident }}.template_designs VALIDATE CONSTRAINT template_designs_tenant_id_tenants_id_fk
