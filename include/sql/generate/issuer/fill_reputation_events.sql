INSERT INTO {{ schema | ident }}.reputation_events
    (id, event_id, subject_did, platform_id, category, signal_type, score, occurred_at, metadata, created_at)
SELECT
    pg_temp.uid('reputation_events', g.n),
    pg_temp.or_null(g.n, 1, 'evt_' || g.n),
    'did:key:z6Mk' || md5('subject' || mod(g.n, 500)),
    'platform-' || (1 + mod(g.n, 40)),
    pg_temp.cycle_enum(NULL::{{ schema | ident }}.reputation_category, g.n),
    pg_temp.or_hard(g.n, 2, 'on_time_delivery'),
    CASE mod(g.n, 40) WHEN 0 THEN -2147483648 WHEN 1 THEN 2147483647 ELSE mod(pg_temp.rnd(g.n, 3), 201)::integer - 100 END,
    pg_temp.ts(g.n, 4),
    pg_temp.or_null(g.n, 5, pg_temp.doc(g.n, 10)),
    pg_temp.or_null(g.n, 6, pg_temp.ts(g.n, 7))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
