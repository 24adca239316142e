-- A non-negative pseudo-random number from (seed, row number, salt) only, so
-- the data never depends on batch size, parallelism or call order.
CREATE OR REPLACE FUNCTION pg_temp.rnd(n bigint, salt integer) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT hashint8extended(n, current_setting('credity_generator.seed')::bigint * 1000003 + salt) & 9223372036854775807
$$
