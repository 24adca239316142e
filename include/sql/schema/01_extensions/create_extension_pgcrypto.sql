-- Trusted extension since PostgreSQL 13: the database owner may create it, no superuser needed.
-- Its schema named: migration sessions pin search_path to pg_catalog, where it must not go.
CREATE EXTENSION IF NOT EXISTS pgcrypto SCHEMA public
