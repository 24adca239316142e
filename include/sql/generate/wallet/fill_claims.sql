INSERT INTO {{ schema | ident }}.claims
    (id, claimant_user_id, platform_id, claim_type, claim_amount, description, timeline, evidence_ids,
     identity_score, integrity_score, authenticity_score, trust_score, recommendation, red_flags, ai_analysis,
     processing_time_ms, created_at, processed_at)
SELECT
    g.n,
    1 + mod(pg_temp.rnd(g.n, 1), %(n_users)s),
    pg_temp.or_null(g.n, 2, 'platform-' || mod(g.n, 40)),
    pg_temp.or_null(g.n, 3, (ARRAY['refund', 'delivery_not_received', 'damaged_item', 'identity'])[1 + mod(g.n, 4)]),
    pg_temp.or_null(g.n, 4, CASE mod(g.n, 50)
        WHEN 0 THEN 0
        WHEN 1 THEN -0.01
        WHEN 2 THEN 9999999999.99
        WHEN 3 THEN -9999999999.99
        ELSE (mod(pg_temp.rnd(g.n, 5), 100000000) - 1000000) / 100.0
    END),
    pg_temp.or_null(g.n, 6, pg_temp.or_hard(g.n, 7, 'Parcel marked delivered but never arrived')),
    pg_temp.or_null(g.n, 8, pg_temp.doc(g.n, 20)),
    pg_temp.or_null(g.n, 9, jsonb_build_array(g.n, g.n + 1)),
    pg_temp.or_null(g.n, 10, CASE mod(g.n, 40) WHEN 0 THEN 2147483647 WHEN 1 THEN -2147483648 ELSE mod(pg_temp.rnd(g.n, 11), 101)::integer END),
    pg_temp.or_null(g.n, 12, mod(pg_temp.rnd(g.n, 13), 101)::integer),
    pg_temp.or_null(g.n, 14, mod(pg_temp.rnd(g.n, 15), 101)::integer),
    pg_temp.or_null(g.n, 16, mod(pg_temp.rnd(g.n, 17), 101)::integer - 50),
    pg_temp.or_null(g.n, 18, (ARRAY['approve', 'review', 'reject'])[1 + mod(g.n, 3)]),
    pg_temp.or_null(g.n, 19, jsonb_build_array(pg_temp.hard_text(g.n, 20))),
    pg_temp.or_null(g.n, 21, pg_temp.doc(g.n, 30)),
    pg_temp.or_null(g.n, 22, mod(pg_temp.rnd(g.n, 23), 60000)::integer),
    pg_temp.or_null(g.n, 24, pg_temp.ts(g.n, 25)),
    pg_temp.or_null(g.n, 26, pg_temp.ts(g.n, 27))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
