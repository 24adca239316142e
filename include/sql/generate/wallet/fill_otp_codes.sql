INSERT INTO {{ schema | ident }}.otp_codes (id, user_id, identifier, code, purpose, expires_at, used_at, created_at)
SELECT
    g.n,
    pg_temp.or_null(g.n, 1, (1 + mod(pg_temp.rnd(g.n, 2), %(n_users)s))::integer),
    'user' || g.n || '@example.com',
    lpad(mod(pg_temp.rnd(g.n, 3), 1000000)::text, 6, '0'),
    (ARRAY['login', 'email_verification', 'phone_verification', 'password_reset'])[1 + mod(g.n, 4)],
    pg_temp.ts(g.n, 4),
    pg_temp.or_null(g.n, 5, pg_temp.ts(g.n, 6)),
    pg_temp.or_null(g.n, 7, pg_temp.ts(g.n, 8))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
