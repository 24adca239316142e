SELECT c.id, c.issuer, c.issuance_date
FROM {{ schema | ident }}.credentials AS c
WHERE c.user_id = (SELECT min(id) FROM {{ schema | ident }}.users) AND NOT coalesce(c.is_archived, false)
ORDER BY c.issuance_date DESC
LIMIT 20
