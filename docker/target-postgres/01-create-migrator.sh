#!/bin/bash
# Like a managed PostgreSQL: the migration role owns the target database but is no superuser.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v password="$TARGET_MIGRATOR_PASSWORD" <<'SQL'
CREATE ROLE migrator WITH LOGIN PASSWORD :'password';
CREATE DATABASE postgres_target OWNER migrator;
\connect postgres_target
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
