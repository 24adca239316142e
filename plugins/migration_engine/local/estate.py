"""A throwaway estate: a source server with one database per service, a target
server with a non-superuser owner (as a managed PostgreSQL grants it), and a
pgbouncer in transaction mode in front of the target.

``python -m migration_engine.local.estate up`` starts one and prints the
``AIRFLOW_CONN_*`` lines for it; ``down`` removes it. Real DSNs given through
the environment (``AIRFLOW_CONN_*``) take precedence wherever connections are read.
"""

from __future__ import annotations

import json
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import sql

from migration_engine.endpoints import Endpoint, from_url
from migration_engine.local.pgbouncer import Pgbouncer
from migration_engine.local.servers import PostgresServer
from migration_engine.manifest import DEFAULT_MANIFEST, Manifest, load_manifest

TARGET_DB = "postgres_target"
TARGET_OWNER = "migrator"
STATE_FILE = Path(__file__).resolve().parents[3] / ".airflow" / "estate.json"


@dataclass
class Estate:
    manifest: Manifest
    source: PostgresServer = field(default_factory=lambda: PostgresServer("source"))
    target: PostgresServer = field(default_factory=lambda: PostgresServer("target"))
    target_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    pooler: Pgbouncer | None = None
    with_pooler: bool = True
    app_passwords: dict[str, str] = field(default_factory=dict)

    def start(self) -> Estate:
        self.source.init().start()
        self.target.init().start()
        for service in self.manifest.services:
            self.source.create_database(self.source_db(service.name))
            if service.app_role:
                self._create_app_role(service)
        # Managed PostgreSQL: the migration role owns the database but is no superuser.
        self.target.create_role(TARGET_OWNER, self.target_password)
        self.target.create_database(TARGET_DB, owner=TARGET_OWNER)
        self.target.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"), dbname=TARGET_DB)
        if self.with_pooler:
            self.pooler = Pgbouncer(self.target, {TARGET_OWNER: self.target_password}).start()
        return self

    def _create_app_role(self, service) -> None:
        """The app's own login on its source database, allowed to write what the layout creates."""
        password = self.app_passwords.setdefault(service.app_role, secrets.token_urlsafe(18))
        self.source.create_role(service.app_role, password)
        role, schema = sql.Identifier(service.app_role), sql.Identifier(service.source_schema)
        db = self.source_db(service.name)
        self.source.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role), dbname=db)
        for objects in ("TABLES", "SEQUENCES"):
            self.source.execute(
                sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT ALL ON {} TO {}").format(schema, sql.SQL(objects), role),
                dbname=db,
            )

    def app_url(self, service: str) -> str:
        role = self.manifest.service(service).app_role
        return self.source.url(self.source_db(service), role, self.app_passwords[role])

    def stop(self) -> None:
        if self.pooler:
            self.pooler.destroy()
        self.source.destroy()
        self.target.destroy()

    def __enter__(self) -> Estate:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @staticmethod
    def source_db(service: str) -> str:
        return service

    def source_url(self, service: str) -> str:
        return self.source.url(self.source_db(service))

    def target_url(self) -> str:
        return self.target.url(TARGET_DB, TARGET_OWNER, self.target_password)

    def pooler_url(self) -> str:
        assert self.pooler, "estate started without a pooler"
        return self.pooler.url(TARGET_DB, TARGET_OWNER, self.target_password)

    def source_endpoint(self, service: str) -> Endpoint:
        return from_url(f"{service} source", self.source_url(service))

    def source_endpoints(self) -> dict[str, Endpoint]:
        """Every service's source endpoint, by service name."""
        return {service.name: self.source_endpoint(service.name) for service in self.manifest.services}

    def target_endpoint(self) -> Endpoint:
        return from_url("target (direct)", self.target_url())

    def pooler_endpoint(self) -> Endpoint:
        return from_url("target (pooler)", self.pooler_url())

    def airflow_env(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` variables for every connection of the manifest."""
        env = {}
        for service in self.manifest.services:
            env[_conn_var(self.manifest.source_conn_id(service.name))] = self.source_url(service.name)
        env[_conn_var(self.manifest.target_direct.conn_id)] = self.target_url()
        if self.pooler:
            env[_conn_var(self.manifest.target_pooler.conn_id)] = self.pooler_url()
        return env

    def secrets(self) -> list[str]:
        return [self.source.password, self.target.password, self.target_password, *self.app_passwords.values()]


def _conn_var(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper().replace("-", "_")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "up"
    if command == "up":
        estate = Estate(load_manifest(DEFAULT_MANIFEST)).start()
        STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        STATE_FILE.write_text(json.dumps({
            "roots": [str(estate.source.root), str(estate.target.root), str(estate.pooler.root if estate.pooler else "")],
            "env": estate.airflow_env(),
        }))
        STATE_FILE.chmod(0o600)
        for key, value in estate.airflow_env().items():
            print(f"export {key}='{value}'")
        print(f"# stop with: python -m migration_engine.local.estate down  (state in {STATE_FILE})", file=sys.stderr)
        return 0
    if command == "down":
        if not STATE_FILE.exists():
            print("no estate is running", file=sys.stderr)
            return 0
        import shutil
        import subprocess

        from migration_engine.local.servers import _as_server_user, pg_bindir

        state = json.loads(STATE_FILE.read_text())
        for root in state["roots"]:
            if not root:
                continue
            pid = Path(root) / "pgbouncer.pid"
            if pid.exists():
                subprocess.run(["kill", pid.read_text().strip()], check=False)
            if (Path(root) / "data").exists():
                subprocess.run(_as_server_user([str(pg_bindir() / "pg_ctl"), "-D", f"{root}/data", "-m", "fast", "stop"]), capture_output=True)
            shutil.rmtree(root, ignore_errors=True)
        STATE_FILE.unlink()
        return 0
    print("usage: python -m migration_engine.local.estate up|down", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
