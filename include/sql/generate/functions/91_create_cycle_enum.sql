-- Row n takes label n modulo the number of labels, so every label occurs.
CREATE OR REPLACE FUNCTION pg_temp.cycle_enum(of_type anyenum, n bigint) RETURNS anyenum
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT (enum_range(of_type))[1 + mod(n, array_length(enum_range(of_type), 1))]
$$
