INSERT INTO {{ schema | ident }}.activities (id, user_id, type, description, "timestamp")
SELECT
    g.n,
    1 + mod(pg_temp.rnd(g.n, 1), %(n_users)s),
    (ARRAY['credential_received', 'credential_shared', 'login', 'profile_updated', 'verification'])[1 + mod(g.n, 5)],
    pg_temp.or_hard(g.n, 2, 'Shared credential #' || mod(pg_temp.rnd(g.n, 3), 100000) || ' with a verifier'),
    pg_temp.or_null(g.n, 4, pg_temp.ts(g.n, 5))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
