-- The reverse of finalize: a rollback within the retention window gives the app its writes back.
GRANT INSERT, UPDATE, DELETE ON
{%- for table in tables %} {{ (schema, table) | ident }}{% if not loop.last %},{% endif %}{% endfor %}
TO {{ app_role | ident }}
