SELECT k.key, s.{{ updated_column | ident }}, extract(epoch FROM now() - s.{{ updated_column | ident }}) / 3600.0
FROM unnest(%(keys)s::text[]) AS k(key)
LEFT JOIN {{ state_store | ident }} s ON s.{{ key_column | ident }} = k.key
ORDER BY k.key
