INSERT INTO {{ schema | ident }}.reputation_events
    (id, user_id, event_id, platform, category, signal_type, score, weight, decay_factor, metadata, event_date, created_at)
SELECT
    g.n,
    1 + mod(pg_temp.rnd(g.n, 1), %(n_users)s),
    'evt_' || g.n,
    (ARRAY['uber', 'airbnb', 'swiggy', 'linkedin'])[1 + mod(g.n, 4)],
    (ARRAY['transport', 'accommodation', 'delivery', 'employment', 'finance', 'social', 'identity'])[1 + mod(g.n, 7)],
    pg_temp.or_hard(g.n, 2, 'rating'),
    CASE mod(g.n, 40) WHEN 0 THEN -2147483648 WHEN 1 THEN 2147483647 WHEN 2 THEN 0 ELSE mod(pg_temp.rnd(g.n, 3), 201)::integer - 100 END,
    mod(pg_temp.rnd(g.n, 4), 10)::integer,
    pg_temp.or_null(g.n, 5, CASE mod(g.n, 30)
        WHEN 0 THEN 0
        WHEN 1 THEN 9.9999
        WHEN 2 THEN -9.9999
        WHEN 3 THEN 0.0001
        ELSE mod(pg_temp.rnd(g.n, 6), 10000) / 10000.0
    END),
    pg_temp.or_null(g.n, 7, pg_temp.doc(g.n, 60)),
    pg_temp.ts(g.n, 8),
    pg_temp.or_null(g.n, 9, pg_temp.ts(g.n, 10))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
