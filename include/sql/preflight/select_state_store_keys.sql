SELECT k.key, s.{{ updated_column }}, extract(epoch FROM now() - s.{{ updated_column }}) / 3600.0
FROM unnest(%(keys)s::text[]) AS k(key)
LEFT JOIN {{ state_store }} s ON s.{{ key_column }} = k.key
ORDER BY k.key
