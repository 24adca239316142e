INSERT INTO {{ table | ident }} (service_key, payload, updated_at)
SELECT k.service_key, pg_temp.state_payload(k.service_key, %(entries)s), now()
FROM unnest(%(keys)s::text[]) AS k(service_key)
