-- Finalize: the app role may still read its source (rollback window), but not write.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {{ schema | ident }} FROM {{ app_role | ident }}
