-- Finalize: the app role may still read its source (rollback window), but not write the migrated tables.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON
{%- for table in tables %} {{ (schema, table) | ident }}{% if not loop.last %},{% endif %}{% endfor %}
FROM {{ app_role | ident }}
