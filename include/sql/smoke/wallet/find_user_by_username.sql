SELECT id, username, did, email_verified
FROM {{ schema | ident }}.users
WHERE username = (SELECT username FROM {{ schema | ident }}.users ORDER BY id LIMIT 1)
