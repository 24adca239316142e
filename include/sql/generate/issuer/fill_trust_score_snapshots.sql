INSERT INTO {{ schema | ident }}.trust_score_snapshots
    (id, user_id, score, signals_version, features_hash, model_version, explanation_json, decay_applied_at, created_at)
SELECT
    pg_temp.uid('trust_score_snapshots', g.n),
    pg_temp.uid('users', 1 + mod(pg_temp.rnd(g.n, 1), %(n_users)s)),
    CASE mod(g.n, 40) WHEN 0 THEN 0 WHEN 1 THEN -1 ELSE mod(pg_temp.rnd(g.n, 2), 101)::integer END,
    'signals-v' || mod(g.n, 4),
    md5('features' || g.n),
    'model-2026.' || mod(g.n, 12),
    pg_temp.doc(g.n, 10),
    pg_temp.or_null(g.n, 3, pg_temp.ts(g.n, 4)),
    pg_temp.or_null(g.n, 5, pg_temp.ts(g.n, 6))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
