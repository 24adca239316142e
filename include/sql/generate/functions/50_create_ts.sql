-- A timestamp between 2019 and 2026 with microseconds.
CREATE OR REPLACE FUNCTION pg_temp.ts(n bigint, salt integer) RETURNS timestamp
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT timestamp '2019-01-01 00:00:00' + make_interval(secs => mod(pg_temp.rnd(n, salt), 220000000000000) / 1000000.0)
$$
