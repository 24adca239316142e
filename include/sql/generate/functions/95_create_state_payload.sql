-- A whole-service state document of about 250 bytes per entry (several MB at 10,000 entries).
CREATE OR REPLACE FUNCTION pg_temp.state_payload(service_key text, entries integer) RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT jsonb_build_object(
        'service', service_key,
        'schemaVersion', 3,
        'records', (
            SELECT jsonb_object_agg(
                'rec-' || i,
                jsonb_build_object(
                    'id', pg_temp.uid(service_key, i),
                    'status', (ARRAY['queued', 'issued', 'revoked', 'anchored'])[1 + mod(pg_temp.rnd(i, mod(hashtext(service_key), 1000000)), 4)],
                    'note', pg_temp.or_hard(i, mod(hashtext(service_key), 1000000) + 1, 'record ' || i),
                    'attempts', mod(pg_temp.rnd(i, mod(hashtext(service_key), 1000000) + 2), 7),
                    'createdAt', pg_temp.ts(i, mod(hashtext(service_key), 1000000) + 3),
                    'history', jsonb_build_array(jsonb_build_object('at', pg_temp.ts(i, 5), 'by', pg_temp.person_name(i, 6)), NULL)
                )
            )
            FROM generate_series(1, entries) AS i
        )
    )
$$
