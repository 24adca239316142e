-- Validating an already valid constraint is a no-op, so a second run is harmless.
ALTER TABLE {{ schema | ident }}.team_members VALIDATE CONSTRAINT team_members_tenant_id_tenants_id_fk
