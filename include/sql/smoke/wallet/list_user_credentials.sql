SELECT c.id, c.issuer, c.issuance_date
FROM {{ schema }}.credentials AS c
WHERE c.user_id = (SELECT min(id) FROM {{ schema }}.users) AND NOT coalesce(c.is_archived, false)
ORDER BY c.issuance_date DESC
LIMIT 20
