INSERT INTO {{ schema | ident }}.api_keys (id, tenant_id, key_hash, permissions, created_at, expires_at)
SELECT
    pg_temp.uid('api_keys', g.n),
    pg_temp.uid('tenants', 1 + mod(pg_temp.rnd(g.n, 1), %(n_tenants)s)),
    encode(sha256(('key' || g.n)::bytea), 'hex'),
    pg_temp.or_null(g.n, 2, jsonb_build_array('credentials:issue', 'credentials:revoke')),
    pg_temp.or_null(g.n, 3, pg_temp.ts(g.n, 4)),
    pg_temp.or_null(g.n, 5, pg_temp.ts(g.n, 6))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
