SELECT id, username, did, email_verified
FROM {{ schema }}.users
WHERE username = (SELECT username FROM {{ schema }}.users ORDER BY id LIMIT 1)
