-- user_id is unique: row n scores user n (the generator keeps this table no larger than users).
INSERT INTO {{ schema | ident }}.reputation_scores
    (id, user_id, raw_score, normalized_score, category_breakdown, event_count, last_calculated_at, updated_at)
SELECT
    g.n,
    g.n,
    mod(pg_temp.rnd(g.n, 1), 1001)::integer,
    mod(pg_temp.rnd(g.n, 2), 1001)::integer,
    pg_temp.or_null(g.n, 3, jsonb_build_object('transport', mod(g.n, 100), 'finance', NULL, 'identity', jsonb_build_object('kyc', true))),
    mod(pg_temp.rnd(g.n, 4), 500)::integer,
    pg_temp.or_null(g.n, 5, pg_temp.ts(g.n, 6)),
    pg_temp.or_null(g.n, 7, pg_temp.ts(g.n, 8))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
