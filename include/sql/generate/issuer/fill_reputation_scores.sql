INSERT INTO {{ schema | ident }}.reputation_scores (id, subject_did, vertical, score, event_count, breakdown, computed_at)
SELECT
    pg_temp.uid('reputation_scores', g.n),
    'did:key:z6Mk' || md5('subject' || mod(g.n, 500)),
    pg_temp.or_null(g.n, 1, pg_temp.cycle_enum(NULL::{{ schema | ident }}.reputation_vertical, g.n)),
    mod(pg_temp.rnd(g.n, 2), 1001)::integer,
    CASE mod(g.n, 50) WHEN 0 THEN 0 ELSE mod(pg_temp.rnd(g.n, 3), 10000)::integer END,
    pg_temp.or_null(g.n, 4, jsonb_build_array(jsonb_build_object('category', 'finance', 'score', mod(g.n, 100)), jsonb_build_object())),
    pg_temp.or_null(g.n, 5, pg_temp.ts(g.n, 6))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
