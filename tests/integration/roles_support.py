"""The migration roles as an admin creates them: scripts/create_migration_roles.sql through psql."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from migration_engine.local.servers import PostgresServer
from migration_engine.manifest import Service
from migration_engine.source_access import roles_script_variables

ROLES_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "create_migration_roles.sql"
SOURCE_ROLE = "credity_migration"


def psql_script(server: PostgresServer, dbname: str, **variables: str) -> str:
    """Run the roles script as psql would be run by an admin (the password travels in the environment
    only); returns what it printed."""
    args = ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "-d", dbname,
            "-f", str(ROLES_SCRIPT)]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    return subprocess.run(args, env={**os.environ, "PGPASSWORD": server.password}, check=True, capture_output=True,
                          text=True).stdout


def create_source_role(server: PostgresServer, dbname: str, service: Service) -> None:
    """The source role for one service, with the variables ``migration-env-contract roles`` prints."""
    psql_script(server, dbname, **roles_script_variables(service, SOURCE_ROLE))
