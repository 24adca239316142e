UPDATE {{ control_schema | ident }}.read_path
SET dual_write = %(enabled)s, changed_at = now(), changed_by = %(changed_by)s
WHERE service = ANY(%(services)s::text[]) AND dual_write IS DISTINCT FROM %(enabled)s
