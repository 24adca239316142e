INSERT INTO {{ schema | ident }}.device_fingerprints (id, user_id, fingerprint, ip_address, user_agent, created_at, last_seen_at)
SELECT
    g.n,
    1 + mod(pg_temp.rnd(g.n, 1), %(n_users)s),
    'fp_' || g.n || '_' || md5('fp' || g.n),
    pg_temp.or_null(g.n, 2, (ARRAY['10.0.', '192.168.', '2001:db8::', '172.16.'])[1 + mod(g.n, 4)] || mod(g.n, 255)),
    pg_temp.or_null(g.n, 3, pg_temp.or_hard(g.n, 4, 'Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36')),
    pg_temp.or_null(g.n, 5, pg_temp.ts(g.n, 6)),
    pg_temp.or_null(g.n, 7, pg_temp.ts(g.n, 8))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
