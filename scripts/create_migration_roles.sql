-- The least-privileged roles a Credity migration needs. Run with psql, once per database.
-- `migration-env-contract roles` prints these commands with each service's tables filled in.
--
--   Each SOURCE database (wallet, issuer, recruiter), as its owner or an admin:
--     psql "$SOURCE_ADMIN_URL" -v side=source -v role=credity_migration \
--          -v schema=public -v app_role=wallet_app -v tables=users,credentials,... \
--          -f scripts/create_migration_roles.sql
--   The TARGET database, as the managed service's admin (Supabase: postgres, not a superuser):
--     psql "$TARGET_ADMIN_URL" -v side=target -v role=credity_migrator -f scripts/create_migration_roles.sql
--
-- tables are the manifest's tables of the service, by their source names, comma-separated:
-- the only tables the migration role may write. The script refuses, naming them, when one
-- does not exist in the schema.
--
-- app_role is the role the service itself logs in as on its source database: the
-- manifest's services.<name>.app_role, for Credity wallet_app, issuer_app and recruiter_app.
-- This script does not create it (the app already runs as it); it refuses, naming it, when
-- that role does not exist. If the app connects as the database owner, create a login role
-- for it first (CREATE ROLE wallet_app LOGIN; grant it what the app uses) and switch the app to it.
--
-- A refusal changes nothing and ends psql with an error (exit status 3), so a calling
-- script stops too.
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
--   * writes rows of the manifest's tables only (INSERT, UPDATE, DELETE; USAGE, UPDATE on the
--     sequences those tables own): after cutover the source is the secondary, and reconcile
--     (target -> source) and rollback's repair write it. No DDL, no TRUNCATE.
--   * finalize revokes the app role's writes on those tables. Only the grantor of a privilege
--     may revoke it, so the app role's INSERT, UPDATE and DELETE grants are re-issued BY the
--     migration role, which holds them WITH GRANT OPTION (on those tables, nothing more): the
--     app keeps the same rows to write, and the migration role can take them back without
--     owning a table.
--   * the app role loses TRUNCATE on those tables for the migration's duration. TRUNCATE is
--     not MVCC-safe: a transaction whose snapshot predates it sees the table empty, so a
--     TRUNCATE during the backfill's snapshot copy would lose every row; no reconcile should
--     have to chase one either. The owner grants it back after the contract phase if the app
--     needs it.
--   * default privileges for tables created later stay the owner's, and the migration role
--     cannot change them: finalize covers the manifest's tables (the schema is frozen by the
--     preflight fingerprint until then).
--
-- Target role: creates and owns the service schemas and migration_control (CONNECT and
-- CREATE on the database), nothing cluster-wide.

\set ON_ERROR_STOP on
\if :{?side}
\else
  DO $refuse$ BEGIN RAISE EXCEPTION 'set -v side=source or -v side=target'; END $refuse$;
\endif

SELECT :'side' = 'source' AS is_source \gset
\if :is_source
  \if :{?app_role}
  \else
    DO $refuse$ BEGIN RAISE EXCEPTION 'set -v app_role=<the role the service logs in as: wallet_app, issuer_app or recruiter_app>'; END $refuse$;
  \endif
  SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') AS app_role_exists \gset
  \if :app_role_exists
  \else
    SELECT format('DO $refuse$ BEGIN RAISE EXCEPTION USING MESSAGE = %L; END $refuse$', format('app role %s does not exist in this cluster: it is the role the service logs in as (see the header); nothing was changed', :'app_role')) \gexec
  \endif
  \if :{?tables}
  \else
    DO $refuse$ BEGIN RAISE EXCEPTION 'set -v tables=<the service''s manifest tables, comma-separated: migration-env-contract roles prints them>'; END $refuse$;
  \endif
  -- NULL (and the variable unset) when every table named exists in the schema.
  SELECT string_agg(name, ', ') AS missing_tables
  FROM unnest(string_to_array(:'tables', ',')) AS name
  WHERE to_regclass(format('%I.%I', :'schema', name)) IS NULL \gset
  \if :{?missing_tables}
    SELECT format('DO $refuse$ BEGIN RAISE EXCEPTION USING MESSAGE = %L; END $refuse$', format('no such table in schema %s: %s (tables are the manifest''s, by their source names); nothing was changed', :'schema', :'missing_tables')) \gexec
  \endif
\endif

SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS;
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'role') \gexec

\if :is_source
  GRANT pg_read_all_data TO :"role";
  GRANT USAGE ON SCHEMA :"schema" TO :"role";
  SELECT format('GRANT USAGE, UPDATE ON SEQUENCE %s TO %I', seq.oid::regclass, :'role')
  FROM pg_class AS seq
  JOIN pg_depend AS dep ON dep.classid = 'pg_class'::regclass AND dep.objid = seq.oid AND dep.deptype IN ('a', 'i')
  JOIN pg_class AS tab ON tab.oid = dep.refobjid
  WHERE seq.relkind = 'S' AND tab.relnamespace = :'schema'::regnamespace
    AND tab.relname = ANY (string_to_array(:'tables', ',')) \gexec
  -- Re-issue the app's writes through the migration role (one transaction: no moment without them).
  BEGIN;
  SELECT format('GRANT INSERT, UPDATE, DELETE ON %I.%I TO %I WITH GRANT OPTION', :'schema', name, :'role')
  FROM unnest(string_to_array(:'tables', ',')) AS name \gexec
  SET LOCAL ROLE :"role";
  SELECT format('GRANT INSERT, UPDATE, DELETE ON %I.%I TO %I', :'schema', name, :'app_role')
  FROM unnest(string_to_array(:'tables', ',')) AS name \gexec
  RESET ROLE;
  SELECT format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %I.%I FROM %I GRANTED BY %I',
                :'schema', tab.relname, :'app_role', pg_get_userbyid(tab.relowner))
  FROM pg_class AS tab
  WHERE tab.relkind IN ('r', 'p') AND tab.relnamespace = :'schema'::regnamespace
    AND tab.relname = ANY (string_to_array(:'tables', ',')) \gexec
  COMMIT;
\else
  SELECT format('GRANT CREATE ON DATABASE %I TO %I', current_database(), :'role') \gexec
\endif
