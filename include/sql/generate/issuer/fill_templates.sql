INSERT INTO {{ schema | ident }}.templates (id, tenant_id, name, schema, render, version, disclosure, created_at)
SELECT
    pg_temp.uid('templates', g.n),
    pg_temp.uid('tenants', 1 + mod(pg_temp.rnd(g.n, 1), %(n_tenants)s)),
    pg_temp.or_hard(g.n, 2, 'Degree template ' || g.n),
    pg_temp.doc(g.n, 10),
    pg_temp.or_hard(g.n, 3, '<div class="credential">${name}</div>'),
    pg_temp.or_null(g.n, 4, '1.' || mod(g.n, 10) || '.0'),
    pg_temp.or_null(g.n, 5, jsonb_build_object('selective', mod(g.n, 2) = 0, 'fields', jsonb_build_array('name', 'degree'))),
    pg_temp.or_null(g.n, 6, pg_temp.ts(g.n, 7))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g(n)
