-- Every tenth row is NULL (offset by the salt, so columns differ): every
-- nullable column holds NULLs even in a table of ten rows.
CREATE OR REPLACE FUNCTION pg_temp.or_null(n bigint, salt integer, value anyelement) RETURNS anyelement
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN mod(n + salt, 10) = 0 THEN NULL ELSE value END
$$
