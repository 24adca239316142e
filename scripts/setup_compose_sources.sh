#!/bin/bash
# docker-compose.yaml's one-shot source-setup: the compose source databases as the apps would
# leave them (the Credity tables, filled with generated rows), then the migration's
# least-privileged source role, made as an admin makes it on real databases: the psql
# commands `migration-env-contract roles` prints. Airflow then reaches the sources only as
# that role, never as their superuser.
#
# Needs WALLET_SOURCE_ADMIN_URL, ISSUER_SOURCE_ADMIN_URL, RECRUITER_SOURCE_ADMIN_URL (an
# admin of each source database) and SOURCE_MIGRATION_PASSWORD. Safe to run again: the
# rows are generated only into databases without tables, and the roles script is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

for service in WALLET ISSUER RECRUITER; do
  admin_url="${service}_SOURCE_ADMIN_URL"
  # The generator finds the sources through the manifest's Airflow connections.
  export "AIRFLOW_CONN_CREDITY_${service}_SOURCE=${!admin_url:?set ${admin_url}}"
done
: "${SOURCE_MIGRATION_PASSWORD:?set SOURCE_MIGRATION_PASSWORD}"

tables=$(psql "$WALLET_SOURCE_ADMIN_URL" -XtAc "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
if [ "$tables" = 0 ]; then
  python -m migration_engine.generator --scale 1
fi

roles=$(python -m migration_engine.env_contract roles)
eval "$(grep '_SOURCE_ADMIN_URL' <<<"$roles")"

# The password comes from the environment, never a command line.
psql "$WALLET_SOURCE_ADMIN_URL" -X -q -v ON_ERROR_STOP=1 -v role=credity_migration <<'SQL'
\getenv password SOURCE_MIGRATION_PASSWORD
ALTER ROLE :"role" PASSWORD :'password';
SQL
echo "source-setup: the sources hold the Credity tables; Airflow reaches them as credity_migration"
