-- Trusted extension since PostgreSQL 13: the database owner may create it, no superuser needed.
CREATE EXTENSION IF NOT EXISTS pgcrypto
