INSERT INTO {{ schema | ident }}.issuers (id, tenant_id, name, domain, did, trust_status, meta, created_at)
SELECT
    pg_temp.uid('issuers', g.n),
    pg_temp.uid('tenants', 1 + mod(pg_temp.rnd(g.n, 1), %(n_tenants)s)),
    pg_temp.or_hard(g.n, 2, 'Registrar ' || g.n),
    'issuer' || g.n || '.example.edu',
    pg_temp.or_null(g.n, 3, 'did:web:issuer' || g.n || '.example.edu'),
    pg_temp.or_null(g.n, 4, pg_temp.cycle_enum(NULL::{{ schema | ident }}.trust_status, g.n)),
    pg_temp.or_null(g.n, 5, pg_temp.doc(g.n, 10)),
    pg_temp.or_null(g.n, 6, pg_temp.ts(g.n, 7))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
