INSERT INTO {{ schema | ident }}.platform_authorities
    (id, tenant_id, platform_id, name, domain, status, allowed_verticals, allowed_categories, created_at)
SELECT
    pg_temp.uid('platform_authorities', g.n),
    pg_temp.or_null(g.n, 1, pg_temp.uid('tenants', 1 + mod(pg_temp.rnd(g.n, 2), %(n_tenants)s))),
    'platform-' || g.n,
    pg_temp.or_hard(g.n, 3, 'Platform ' || g.n),
    pg_temp.or_null(g.n, 4, 'platform' || g.n || '.example.com'),
    pg_temp.or_null(g.n, 5, pg_temp.cycle_enum(NULL::{{ schema | ident }}.platform_authority_status, g.n)),
    pg_temp.or_null(g.n, 6, jsonb_build_array('work', 'gig')),
    pg_temp.or_null(g.n, 7, jsonb_build_array('transport', 'delivery')),
    pg_temp.or_null(g.n, 8, pg_temp.ts(g.n, 9))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
