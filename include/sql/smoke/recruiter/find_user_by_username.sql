SELECT id, username
FROM {{ schema | ident }}.users
WHERE username = (SELECT username FROM {{ schema | ident }}.users ORDER BY id LIMIT 1)
