-- Text that breaks naive copy, CSV, JSON and checksum code.
CREATE OR REPLACE FUNCTION pg_temp.hard_text(n bigint, salt integer) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT (ARRAY[
        E'tab\tinside',
        E'line one\nline two',
        E'carriage\r\nreturn',
        E'back\\slash C:\\temp\\new',
        'single '' quote',
        'double " quote, comma',
        '\N',
        'NULL',
        '',
        '   padded   ',
        '😀 emoji 🚀👩‍👩‍👧',
        '中文 日本語 한국어',
        'Zoë José Ølaf e' || chr(769) || ' combining',
        'مرحبا بالعالم',
        'שלום עולם',
        '{"looks": ["like", "json"]}'
    ])[1 + mod(pg_temp.rnd(n, salt), 16)]
$$
