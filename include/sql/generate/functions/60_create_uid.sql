-- The uuid of row k of an entity: children compute their parents' keys without a lookup.
CREATE OR REPLACE FUNCTION pg_temp.uid(entity text, k bigint) RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT md5(current_setting('credity_generator.seed') || ':' || entity || ':' || k)::uuid
$$
