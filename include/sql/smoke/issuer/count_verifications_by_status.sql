SELECT status, count(*) FROM {{ schema }}.verification_logs GROUP BY status ORDER BY status
