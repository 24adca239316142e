INSERT INTO {{ schema | ident }}.evidence
    (id, user_id, claim_id, media_type, storage_url, authenticity_score, is_ai_generated, manipulation_detected,
     metadata, blockchain_hash, analysis_data, uploaded_at, analyzed_at)
SELECT
    g.n,
    1 + mod(pg_temp.rnd(g.n, 1), %(n_users)s),
    pg_temp.or_null(g.n, 2, (1 + mod(pg_temp.rnd(g.n, 3), %(n_claims)s))::integer),
    pg_temp.or_null(g.n, 4, (ARRAY['image', 'video', 'document', 'audio'])[1 + mod(g.n, 4)]),
    pg_temp.or_null(g.n, 5, 's3://evidence/' || g.n || '/' || md5('ev' || g.n) || '.jpg'),
    pg_temp.or_null(g.n, 6, mod(pg_temp.rnd(g.n, 7), 101)::integer),
    pg_temp.or_null(g.n, 8, mod(g.n, 5) = 0),
    pg_temp.or_null(g.n, 9, mod(g.n, 9) = 0),
    pg_temp.or_null(g.n, 10, pg_temp.doc(g.n, 40)),
    pg_temp.or_null(g.n, 11, '0x' || md5('a' || g.n) || md5('b' || g.n)),
    pg_temp.or_null(g.n, 12, pg_temp.doc(g.n, 50)),
    pg_temp.or_null(g.n, 13, pg_temp.ts(g.n, 14)),
    pg_temp.or_null(g.n, 15, pg_temp.ts(g.n, 16))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
