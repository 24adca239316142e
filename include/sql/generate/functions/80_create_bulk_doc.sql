-- A large array (about 40 kB) for the rare rows that carry one.
CREATE OR REPLACE FUNCTION pg_temp.bulk_doc(n bigint) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT jsonb_agg(jsonb_build_object('i', i, 'hash', md5(n || ':' || i), 'text', pg_temp.hard_text(n * 1000 + i, 7)))
    FROM generate_series(1, 400) AS i
$$
