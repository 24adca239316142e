-- The reverse of finalize: a rollback within the retention window gives the app its writes back.
GRANT INSERT, UPDATE, DELETE ON {{ tables | ident_list }} TO {{ app_role | ident }}
