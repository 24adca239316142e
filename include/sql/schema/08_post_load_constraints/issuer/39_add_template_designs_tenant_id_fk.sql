-- NOT VALID: existing rows are checked by the next file, which locks writers out for less time.
DO $add_constraint$
BEGIN
    ALTER TABLE {{ schema | ident }}.template_designs
        ADD CONSTRAINT template_designs_tenant_id_tenants_id_fk
        FOREIGN KEY ("tenant_id") REFERENCES {{ schema | ident }}.tenants ("id") NOT VALID;
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$add_constraint$
