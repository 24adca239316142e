-- A nested document: every JSON type, hard text, nulls, and one row in 97 with a large array.
CREATE OR REPLACE FUNCTION pg_temp.doc(n bigint, salt integer) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object(
        'id', n,
        'label', pg_temp.or_hard(n, salt, 'item ' || n),
        'score', mod(pg_temp.rnd(n, salt + 2), 100001) / 100.0 - 500,
        'active', mod(pg_temp.rnd(n, salt + 3), 2) = 0,
        'missing', NULL,
        'tags', jsonb_build_array('alpha', 'β', mod(pg_temp.rnd(n, salt + 4), 100)),
        'nested', jsonb_build_object(
            'level', 2,
            'inner', jsonb_build_object('level', 3, 'values', jsonb_build_array(0, -1, 2.5, 1e20, true, NULL, ''))
        ),
        'bulk', CASE WHEN mod(pg_temp.rnd(n, salt + 5), 97) = 0 THEN pg_temp.bulk_doc(n) END
    )
$$
