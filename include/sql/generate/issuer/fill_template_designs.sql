INSERT INTO {{ schema | ident }}.template_designs
    (id, tenant_id, name, category, type, status, fields, background_color, width, height, created_at, updated_at)
SELECT
    pg_temp.uid('template_designs', g.n),
    pg_temp.uid('tenants', 1 + mod(pg_temp.rnd(g.n, 1), %(n_tenants)s)),
    pg_temp.or_hard(g.n, 2, 'Certificate design ' || g.n),
    pg_temp.or_null(g.n, 3, (ARRAY['degree', 'award', 'participation'])[1 + mod(g.n, 3)]),
    pg_temp.or_null(g.n, 4, (ARRAY['landscape', 'portrait'])[1 + mod(g.n, 2)]),
    pg_temp.or_null(g.n, 5, (ARRAY['Draft', 'Published', 'Archived'])[1 + mod(g.n, 3)]),
    pg_temp.or_null(g.n, 6, jsonb_build_array(jsonb_build_object('key', 'name', 'x', 120, 'y', 300, 'font', 'Noto Sans'))),
    pg_temp.or_null(g.n, 7, '#' || substr(md5('color' || g.n), 1, 6)),
    pg_temp.or_null(g.n, 8, CASE mod(g.n, 20) WHEN 0 THEN 0 WHEN 1 THEN -1 ELSE 842 END),
    pg_temp.or_null(g.n, 9, CASE mod(g.n, 20) WHEN 2 THEN 2147483647 ELSE 595 END),
    pg_temp.or_null(g.n, 10, pg_temp.ts(g.n, 11)),
    pg_temp.or_null(g.n, 12, pg_temp.ts(g.n, 13))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
