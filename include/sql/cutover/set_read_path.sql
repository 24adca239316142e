UPDATE {{ control_schema | ident }}.read_path
SET primary_side = %(side)s, changed_at = now(), changed_by = %(changed_by)s
WHERE service = ANY(%(services)s::text[]) AND primary_side IS DISTINCT FROM %(side)s
