SELECT service, primary_side, dual_write, changed_at, changed_by
FROM {{ control_schema | ident }}.read_path
ORDER BY service
