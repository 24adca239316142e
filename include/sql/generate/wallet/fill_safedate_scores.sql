-- user_id is unique: row n scores user n (the generator keeps this table no larger than users).
INSERT INTO {{ schema | ident }}.safedate_scores (id, user_id, score, trust_level, inputs, calculated_at)
SELECT
    g.n,
    g.n,
    mod(pg_temp.rnd(g.n, 1), 101)::integer,
    pg_temp.or_null(g.n, 2, (ARRAY['low', 'medium', 'high'])[1 + mod(g.n, 3)]),
    pg_temp.or_null(g.n, 3, pg_temp.doc(g.n, 70)),
    pg_temp.or_null(g.n, 4, pg_temp.ts(g.n, 5))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
