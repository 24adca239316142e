INSERT INTO {{ schema | ident }}.reputation_share_grants
    (id, subject_did, grantee_id, purpose, data_elements, expires_at, revoked_at, created_at)
SELECT
    pg_temp.uid('reputation_share_grants', g.n),
    'did:key:z6Mk' || md5('subject' || mod(g.n, 500)),
    'grantee-' || mod(g.n, 60),
    pg_temp.or_hard(g.n, 1, 'tenant screening'),
    pg_temp.or_null(g.n, 2, jsonb_build_array('score', 'breakdown')),
    pg_temp.ts(g.n, 3),
    pg_temp.or_null(g.n, 4, pg_temp.ts(g.n, 5)),
    pg_temp.or_null(g.n, 6, pg_temp.ts(g.n, 7))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
