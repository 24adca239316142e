INSERT INTO {{ schema | ident }}.team_members (id, tenant_id, name, email, role, status, invited_at, joined_at)
SELECT
    pg_temp.uid('team_members', g.n),
    pg_temp.uid('tenants', 1 + mod(pg_temp.rnd(g.n, 1), %(n_tenants)s)),
    pg_temp.or_hard(g.n, 2, pg_temp.person_name(g.n, 3)),
    'staff' || g.n || '@example.edu',
    pg_temp.or_null(g.n, 4, pg_temp.cycle_enum(NULL::{{ schema | ident }}.team_role, g.n)),
    pg_temp.or_null(g.n, 5, pg_temp.cycle_enum(NULL::{{ schema | ident }}.team_status, g.n / 3)),
    pg_temp.or_null(g.n, 6, pg_temp.ts(g.n, 7)),
    pg_temp.or_null(g.n, 8, pg_temp.ts(g.n, 9))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
