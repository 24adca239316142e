INSERT INTO {{ schema | ident }}.users (id, tenant_id, username, password, role, created_at)
SELECT
    pg_temp.uid('users', g.n),
    pg_temp.or_null(g.n, 1, pg_temp.uid('tenants', 1 + mod(pg_temp.rnd(g.n, 2), %(n_tenants)s))),
    pg_temp.or_hard(g.n, 3, 'admin') || '_' || g.n,
    '$2b$10$' || md5('issuer-pw' || g.n),
    pg_temp.or_null(g.n, 4, (ARRAY['user', 'admin', 'issuer'])[1 + mod(g.n, 3)]),
    pg_temp.or_null(g.n, 5, pg_temp.ts(g.n, 6))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
