-- The documented reverse of finalize (run by hand, per service, on its source database).
GRANT INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {{ schema | ident }} TO {{ app_role | ident }}
