"""The compose init scripts build the same estate as the tests: three source databases with
their app roles, the Credity tables and the least-privileged migration role on them, and a
target database owned by the non-superuser role migrator."""

from __future__ import annotations

import os
import subprocess
import sys
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


def run_source_setup(server: PostgresServer, migration_password: str) -> subprocess.CompletedProcess:
    """As compose's source-setup does, with this machine's python and the package on its path."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(REPO / "plugins"), "SOURCE_MIGRATION_PASSWORD": migration_password}
    for service in ("wallet", "issuer", "recruiter"):
        env[f"{service.upper()}_SOURCE_ADMIN_URL"] = server.url(service)
    done = subprocess.run(["bash", str(REPO / "scripts" / "setup_compose_sources.sh")], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


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


def test_source_setup_leaves_the_tables_and_a_role_that_reads_them_and_writes_rows_only(manifest):
    with PostgresServer("compose-setup") as server:
        run_init_folder(server, "docker/source-postgres", SOURCE_APP_PASSWORD="app-pw")
        run_source_setup(server, "migration-pw")
        again = run_source_setup(server, "migration-pw")
        assert "migration-pw" not in again.stdout + again.stderr
        role = f"{manifest.migration}_migration"
        for service in manifest.services:
            with psycopg.connect(server.dsn(service.name, role, "migration-pw"), autocommit=True) as conn:
                superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
                assert superuser is False
                for table in service.tables:
                    assert conn.execute(f'SELECT count(*) FROM "{table.name}"').fetchone()[0] > 0, table.name
                    privileges = conn.execute(
                        "SELECT has_table_privilege(%s, 'DELETE'), has_table_privilege(%s, 'TRUNCATE')",
                        (table.name, table.name)).fetchone()
                    assert privileges == (True, False), table.name
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute("CREATE TABLE planted (id int)")
            with psycopg.connect(server.dsn(service.name, service.app_role, "app-pw")) as app:
                writable = app.execute("SELECT bool_and(has_table_privilege(c, 'INSERT')) FROM unnest(%s::text[]) AS c",
                                       ([t.name for t in service.tables],)).fetchone()[0]
                assert writable is True, service.name
