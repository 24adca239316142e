SELECT u.id, u.username, u.role, t.name AS tenant
FROM {{ schema | ident }}.users AS u
LEFT JOIN {{ schema | ident }}.tenants AS t ON t.id = u.tenant_id
WHERE u.username = (SELECT username FROM {{ schema | ident }}.users ORDER BY created_at, id LIMIT 1)
