INSERT INTO {{ schema | ident }}.reputation_signal_snapshots (id, subject_did, signals, signals_version, computed_at)
SELECT
    pg_temp.uid('reputation_signal_snapshots', g.n),
    'did:key:z6Mk' || md5('subject' || mod(g.n, 500)),
    pg_temp.doc(g.n, 10),
    'signals-v' || mod(g.n, 4),
    pg_temp.or_null(g.n, 1, pg_temp.ts(g.n, 2))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
