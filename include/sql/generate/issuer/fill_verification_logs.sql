INSERT INTO {{ schema | ident }}.verification_logs
    (id, tenant_id, credential_id, verifier_name, verifier_location, ip_address, status, reason, "timestamp")
SELECT
    pg_temp.uid('verification_logs', g.n),
    pg_temp.uid('tenants', 1 + mod(pg_temp.rnd(g.n, 1), %(n_tenants)s)),
    pg_temp.or_null(g.n, 2, pg_temp.uid('credentials', 1 + mod(pg_temp.rnd(g.n, 3), %(n_credentials)s))),
    pg_temp.or_hard(g.n, 4, 'Acme Hiring ' || mod(g.n, 300)),
    pg_temp.or_null(g.n, 5, pg_temp.or_hard(g.n, 6, (ARRAY['Bengaluru, IN', 'Berlin, DE', 'São Paulo, BR', 'Tokyo, JP'])[1 + mod(g.n, 4)])),
    pg_temp.or_null(g.n, 7, '203.0.113.' || mod(g.n, 255)),
    pg_temp.or_null(g.n, 8, pg_temp.cycle_enum(NULL::{{ schema | ident }}.verification_status, g.n)),
    pg_temp.or_null(g.n, 9, pg_temp.or_hard(g.n, 10, 'signature valid')),
    pg_temp.or_null(g.n, 11, pg_temp.ts(g.n, 12))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
