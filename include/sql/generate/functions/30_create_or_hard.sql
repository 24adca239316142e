-- One value in eight is hard text instead of the realistic one.
CREATE OR REPLACE FUNCTION pg_temp.or_hard(n bigint, salt integer, realistic text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN mod(pg_temp.rnd(n, salt), 8) = 0 THEN pg_temp.hard_text(n, salt + 1) ELSE realistic END
$$
