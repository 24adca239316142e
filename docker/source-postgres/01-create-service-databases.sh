#!/bin/bash
# One database per service, as the apps run today (schema public in each), each with
# the app's own login allowed to write what the layout creates (finalize revokes that).
set -euo pipefail
for service in wallet issuer recruiter; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v db="$service" -v role="${service}_app" -v password="$SOURCE_APP_PASSWORD" <<'SQL'
CREATE DATABASE :"db";
CREATE ROLE :"role" WITH LOGIN PASSWORD :'password';
\connect :"db"
GRANT USAGE ON SCHEMA public TO :"role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO :"role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO :"role";
SQL
done
