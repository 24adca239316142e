INSERT INTO {{ schema | ident }}.api_usage (id, user_id, platform_api_key, endpoint, month, count, last_recorded_at)
SELECT
    g.n,
    pg_temp.or_null(g.n, 1, (1 + mod(pg_temp.rnd(g.n, 2), %(n_users)s))::integer),
    pg_temp.or_null(g.n, 3, 'pk_live_' || md5('key' || g.n)),
    (ARRAY['/api/v1/verify', '/api/v1/credentials', '/api/v1/claims', '/api/v1/reputation'])[1 + mod(g.n, 4)],
    to_char(date '2024-01-01' + (mod(g.n, 26) * interval '1 month'), 'YYYY-MM'),
    CASE mod(g.n, 30) WHEN 0 THEN 0 WHEN 1 THEN 2147483647 ELSE mod(pg_temp.rnd(g.n, 4), 100000)::integer END,
    pg_temp.or_null(g.n, 5, pg_temp.ts(g.n, 6))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
