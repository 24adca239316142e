INSERT INTO {{ schema | ident }}.users
    (id, username, password, did, name, email, bio, avatar_url, phone_number, phone_verified, email_verified)
SELECT
    g.n,
    pg_temp.or_hard(g.n, 1, 'user') || '_' || g.n,
    '$2b$10$' || md5('pw' || g.n),
    pg_temp.or_null(g.n, 2, 'did:key:z6Mk' || md5('did' || g.n)),
    pg_temp.or_null(g.n, 3, pg_temp.or_hard(g.n, 4, pg_temp.person_name(g.n, 5))),
    pg_temp.or_null(g.n, 6, 'user' || g.n || '@example.com'),
    pg_temp.or_null(g.n, 7, pg_temp.or_hard(g.n, 8, 'Building trust, one credential at a time.')),
    pg_temp.or_null(g.n, 9, 'https://cdn.example.com/avatars/' || g.n || '.png'),
    pg_temp.or_null(g.n, 10, '+91' || (9000000000 + mod(pg_temp.rnd(g.n, 11), 999999999))),
    pg_temp.or_null(g.n, 12, mod(g.n, 2) = 0),
    pg_temp.or_null(g.n, 13, mod(g.n, 3) = 0)
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
