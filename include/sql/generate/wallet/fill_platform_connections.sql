INSERT INTO {{ schema | ident }}.platform_connections
    (id, user_id, platform_id, platform_name, status, oauth_access_token, oauth_refresh_token, scopes,
     connected_at, last_synced_at, created_at)
SELECT
    g.n,
    1 + mod(pg_temp.rnd(g.n, 1), %(n_users)s),
    (ARRAY['uber', 'airbnb', 'swiggy', 'linkedin', 'github'])[1 + mod(g.n, 5)],
    pg_temp.or_hard(g.n, 2, (ARRAY['Uber', 'Airbnb', 'Swiggy', 'LinkedIn', 'GitHub'])[1 + mod(g.n, 5)]),
    (ARRAY['pending', 'connected', 'revoked'])[1 + mod(g.n, 3)],
    pg_temp.or_null(g.n, 3, 'ya29.' || md5('at' || g.n) || md5('at2' || g.n)),
    pg_temp.or_null(g.n, 4, '1//' || md5('rt' || g.n)),
    pg_temp.or_null(g.n, 5, 'profile email offline_access'::text),
    pg_temp.or_null(g.n, 6, pg_temp.ts(g.n, 7)),
    pg_temp.or_null(g.n, 8, pg_temp.ts(g.n, 9)),
    pg_temp.or_null(g.n, 10, pg_temp.ts(g.n, 11))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
