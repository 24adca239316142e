-- Read/write probe: runs in a transaction that is rolled back, so it leaves nothing.
INSERT INTO {{ schema }}.{{ state_table }} ({{ key_column }}, payload)
VALUES (%(probe_key)s, jsonb_build_object('probe', true))
ON CONFLICT ({{ key_column }}) DO UPDATE SET payload = EXCLUDED.payload
RETURNING {{ key_column }}
