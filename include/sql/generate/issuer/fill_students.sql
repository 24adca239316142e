INSERT INTO {{ schema | ident }}.students
    (id, tenant_id, name, email, student_id, program, enrollment_year, status, created_at)
SELECT
    pg_temp.uid('students', g.n),
    pg_temp.uid('tenants', 1 + mod(pg_temp.rnd(g.n, 1), %(n_tenants)s)),
    pg_temp.or_hard(g.n, 2, pg_temp.person_name(g.n, 3)),
    'student' || g.n || '@example.edu',
    'S' || lpad(g.n::text, 8, '0'),
    (ARRAY['B.Tech Computer Science', 'MBA', 'B.Sc Physics', 'M.A. Economics'])[1 + mod(g.n, 4)],
    (2015 + mod(g.n, 11))::text,
    pg_temp.or_null(g.n, 4, pg_temp.cycle_enum(NULL::{{ schema | ident }}.student_status, g.n)),
    pg_temp.or_null(g.n, 5, pg_temp.ts(g.n, 6))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
