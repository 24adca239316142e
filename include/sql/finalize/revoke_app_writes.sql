-- Finalize: the app role may still read its source (rollback window), but not write the migrated tables.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {{ tables | ident_list }} FROM {{ app_role | ident }}
