SELECT {{ key_column }}, {{ updated_column }} FROM {{ schema }}.{{ state_table }} ORDER BY {{ key_column }}
