-- The least-privileged roles a Credity migration needs. Run with psql, once per database:
--
--   Each SOURCE database (wallet, issuer, recruiter), as its owner or an admin:
--     psql "$SOURCE_ADMIN_URL" -v side=source -v role=credity_migration \
--          -v schema=public -v app_role=wallet_app -f scripts/create_migration_roles.sql
--   The TARGET database, as the managed service's admin (Supabase: postgres, not a superuser):
--     psql "$TARGET_ADMIN_URL" -v side=target -v role=credity_migrator -f scripts/create_migration_roles.sql
--
-- app_role is the role the service itself logs in as on its source database: the
-- manifest's services.<name>.app_role, for Credity wallet_app, issuer_app and recruiter_app.
-- This script does not create it (the app already runs as it); it refuses, naming it, when
-- that role does not exist. If the app connects as the database owner, create a login role
-- for it first (CREATE ROLE wallet_app LOGIN; grant it what the app uses) and switch the app to it.
--
-- Passwords never appear here or on a command line (where the process list shows them):
-- set them afterwards inside psql with  \password credity_migration
-- The roles are NOSUPERUSER, NOCREATEROLE, NOCREATEDB, NOREPLICATION, NOBYPASSRLS.
--
-- Source role (used by every DAG's source connection):
--   * reads everything pg_dump, the checks, verify and reconcile read: membership in
--     pg_read_all_data (PostgreSQL 14+). Chosen over per-table GRANT SELECT because it also
--     covers sequences and any table a later app migration adds, with no default-privilege
--     bookkeeping, and it grants no write. (Before 14: GRANT USAGE ON SCHEMA, SELECT ON ALL
--     TABLES and ALL SEQUENCES, plus ALTER DEFAULT PRIVILEGES ... GRANT SELECT.)
--   * writes rows of the service tables (INSERT, UPDATE, DELETE; sequences USAGE, UPDATE):
--     after cutover the source is the secondary, and reconcile (target -> source) and
--     rollback's repair_source write it. No DDL, no TRUNCATE of its own.
--   * finalize revokes the app role's writes. Only the grantor of a privilege may revoke it,
--     so the app role's write grants are re-issued BY the migration role, which holds them
--     WITH GRANT OPTION: the app's effective privileges do not change, and the migration
--     role can take them back without owning a table. Default privileges for tables created
--     later stay the owner's, and the migration role cannot change them: finalize covers the
--     tables that exist when it runs (the schema is frozen by the preflight fingerprint until then).
--
-- Target role: creates and owns the service schemas and migration_control (CONNECT and
-- CREATE on the database), nothing cluster-wide.

\set ON_ERROR_STOP on
\if :{?side}
\else
  \echo 'set -v side=source or -v side=target'
  \quit
\endif

SELECT :'side' = 'source' AS is_source \gset
\if :is_source
  \if :{?app_role}
  \else
    \echo 'set -v app_role=<the role the service logs in as: wallet_app, issuer_app or recruiter_app>'
    \quit
  \endif
  SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') AS app_role_exists \gset
  \if :app_role_exists
  \else
    \echo 'app role' :'app_role' 'does not exist in this cluster: it is the role the service logs in as (see the header); nothing was changed'
    \quit
  \endif
\endif

SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS;
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'role') \gexec

\if :is_source
  GRANT pg_read_all_data TO :"role";
  GRANT USAGE ON SCHEMA :"schema" TO :"role";
  GRANT INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA :"schema" TO :"role";
  GRANT USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA :"schema" TO :"role";
  -- Re-issue the app's writes through the migration role (one transaction: no moment without them).
  BEGIN;
  GRANT INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA :"schema" TO :"role" WITH GRANT OPTION;
  SET LOCAL ROLE :"role";
  GRANT INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA :"schema" TO :"app_role";
  RESET ROLE;
  SELECT format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA %I FROM %I GRANTED BY %I',
                :'schema', :'app_role', tableowner)
  FROM (SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = :'schema') AS owners \gexec
  COMMIT;
\else
  SELECT format('GRANT CREATE ON DATABASE %I TO %I', current_database(), :'role') \gexec
\endif
