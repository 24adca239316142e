INSERT INTO {{ schema | ident }}.consent_grants
    (id, subject_id, verifier_id, purpose, data_elements, expiry, revocation_ts, consent_proof, created_at)
SELECT
    pg_temp.uid('consent_grants', g.n),
    pg_temp.uid('subjects', mod(g.n, 500)),
    'verifier-' || mod(g.n, 60),
    pg_temp.or_hard(g.n, 1, 'employment verification'),
    pg_temp.or_null(g.n, 2, jsonb_build_array('name', 'degree', 'graduation_year')),
    pg_temp.ts(g.n, 3),
    pg_temp.or_null(g.n, 4, pg_temp.ts(g.n, 5)),
    jsonb_build_object('signature', md5('consent' || g.n), 'alg', 'EdDSA', 'signedAt', pg_temp.ts(g.n, 6)),
    pg_temp.or_null(g.n, 7, pg_temp.ts(g.n, 8))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
