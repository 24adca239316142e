INSERT INTO {{ schema | ident }}.tenants (id, name, plan, created_at)
SELECT
    pg_temp.uid('tenants', g.n),
    pg_temp.or_hard(g.n, 1, 'University ' || g.n),
    pg_temp.or_null(g.n, 2, (ARRAY['free', 'pro', 'enterprise'])[1 + mod(g.n, 3)]),
    pg_temp.or_null(g.n, 3, pg_temp.ts(g.n, 4))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
