INSERT INTO {{ schema | ident }}.activity_logs (id, tenant_id, type, title, description, metadata, "timestamp")
SELECT
    pg_temp.uid('activity_logs', g.n),
    pg_temp.uid('tenants', 1 + mod(pg_temp.rnd(g.n, 1), %(n_tenants)s)),
    (ARRAY['credential_issued', 'credential_revoked', 'template_created', 'member_invited'])[1 + mod(g.n, 4)],
    pg_temp.or_hard(g.n, 2, 'Issued credential ' || g.n),
    pg_temp.or_null(g.n, 3, pg_temp.or_hard(g.n, 4, 'Batch issuance completed')),
    pg_temp.or_null(g.n, 5, pg_temp.doc(g.n, 10)),
    pg_temp.or_null(g.n, 6, pg_temp.ts(g.n, 7))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
