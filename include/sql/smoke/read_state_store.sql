SELECT {{ key_column | ident }}, {{ updated_column | ident }} FROM {{ schema | ident }}.{{ state_table | ident }} ORDER BY {{ key_column | ident }}
