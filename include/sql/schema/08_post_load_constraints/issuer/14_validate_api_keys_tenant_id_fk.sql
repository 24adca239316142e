-- Validating an already valid constraint is a no-op, so a second run is harmless.
ALTER TABLE {{ schema | ident }}.api_keys VALIDATE CONSTRAINT api_keys_tenant_id_tenants_id_fk
