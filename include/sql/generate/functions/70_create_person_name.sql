CREATE OR REPLACE FUNCTION pg_temp.person_name(n bigint, salt integer) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT (ARRAY['Asha', 'Ravi', 'Zoë', 'José', 'Mei', 'Olu', 'Siobhán', 'Ahmed', 'Ингрид', '李雷'])[1 + mod(pg_temp.rnd(n, salt), 10)]
        || ' '
        || (ARRAY['Patel', 'O''Brien', 'García', 'Nakamura', 'Okafor', 'Müller', 'Σωκράτης', 'Kowalski', 'Nguyễn', 'Smith'])[1 + mod(pg_temp.rnd(n, salt + 1), 10)]
$$
