"""The compose init scripts build the same estate as the tests: three source databases with
their app roles, and a target database owned by the non-superuser role migrator."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
import pytest

from migration_engine.local.estate import TARGET_DB, TARGET_OWNER
from migration_engine.local.servers import PostgresServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def run_init_folder(server: PostgresServer, folder: str, **env: str) -> None:
    """As the postgres image's entrypoint does: every *.sh in the folder, with psql at hand."""
    base = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(server.port), "PGPASSWORD": server.password,
            "POSTGRES_USER": "postgres", **env}
    for script in sorted((REPO / folder).glob("*.sh")):
        subprocess.run(["bash", str(script)], env=base, check=True, capture_output=True, text=True)


def test_source_init_creates_the_service_databases_and_app_roles(manifest):
    with PostgresServer("compose-source") as server:
        run_init_folder(server, "docker/source-postgres", SOURCE_APP_PASSWORD="app-pw")
        with psycopg.connect(server.dsn()) as conn:
            databases = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        for service in manifest.services:
            assert service.name in databases
            with psycopg.connect(server.dsn(service.name, service.app_role, "app-pw")) as app:
                app_sees = app.execute("SELECT has_schema_privilege('public', 'USAGE')").fetchone()[0]
            assert app_sees is True
            with psycopg.connect(server.dsn(service.name), autocommit=True) as owner:
                owner.execute("CREATE TABLE probe (id int)")
            with psycopg.connect(server.dsn(service.name, service.app_role, "app-pw"), autocommit=True) as app:
                app.execute("INSERT INTO probe VALUES (1)")


def test_target_init_creates_a_database_owned_by_a_non_superuser():
    with PostgresServer("compose-target") as server:
        run_init_folder(server, "docker/target-postgres", TARGET_MIGRATOR_PASSWORD="migrator-pw")
        with psycopg.connect(server.dsn(TARGET_DB, TARGET_OWNER, "migrator-pw")) as conn:
            superuser, owner = conn.execute(
                "SELECT rolsuper, pg_get_userbyid(datdba) FROM pg_roles, pg_database "
                "WHERE rolname = current_user AND datname = current_database()").fetchone()
            public_create = conn.execute("SELECT has_schema_privilege('public', 'public', 'CREATE')").fetchone()[0]
        assert (superuser, owner) == (False, TARGET_OWNER)
        assert public_create is False
