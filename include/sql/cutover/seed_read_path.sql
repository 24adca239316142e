INSERT INTO {{ control_schema | ident }}.read_path (service, changed_by)
SELECT service, %(changed_by)s FROM unnest(%(services)s::text[]) AS service
ON CONFLICT (service) DO NOTHING
