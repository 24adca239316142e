INSERT INTO {{ schema | ident }}.credentials (id, user_id, type, issuer, issuance_date, data, jwt, is_archived)
SELECT
    g.n,
    1 + mod(pg_temp.rnd(g.n, 1), %(n_users)s),
    jsonb_build_array('VerifiableCredential', (ARRAY['UniversityDegree', 'EmploymentProof', 'KYC', 'Membership'])[1 + mod(g.n, 4)]),
    pg_temp.or_hard(g.n, 2, 'did:web:issuer' || mod(g.n, 50) || '.example.edu'),
    pg_temp.ts(g.n, 3),
    pg_temp.doc(g.n, 10),
    pg_temp.or_null(g.n, 4, 'eyJhbGciOiJFUzI1NiJ9.' || md5('payload' || g.n) || '.' || md5('sig' || g.n)),
    pg_temp.or_null(g.n, 5, mod(g.n, 7) = 0)
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
