-- Read/write probe: runs in a transaction that is rolled back, so it leaves nothing.
INSERT INTO {{ schema | ident }}.{{ state_table | ident }} ({{ key_column | ident }}, payload)
VALUES (%(probe_key)s, jsonb_build_object('probe', true))
ON CONFLICT ({{ key_column | ident }}) DO UPDATE SET payload = EXCLUDED.payload
RETURNING {{ key_column | ident }}
