SELECT status, count(*) FROM {{ schema | ident }}.verification_logs GROUP BY status ORDER BY status
