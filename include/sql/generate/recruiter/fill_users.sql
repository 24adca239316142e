INSERT INTO {{ schema | ident }}.users (id, username, password)
SELECT
    pg_temp.uid('recruiter-users', g.n)::text,
    pg_temp.or_hard(g.n, 1, 'recruiter') || '_' || g.n,
    '$2b$10$' || md5('recruiter-pw' || g.n)
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
