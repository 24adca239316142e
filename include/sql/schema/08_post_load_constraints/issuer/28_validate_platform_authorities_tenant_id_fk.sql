-- Validating an already valid constraint is a no-op, so a second run is harmless.
ALTER TABLE {{ schema | ident }}.platform_authorities VALIDATE CONSTRAINT platform_authorities_tenant_id_tenants_id_fk
