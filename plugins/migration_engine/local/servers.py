"""Throwaway PostgreSQL servers on free loopback ports, for tests, the demo and benchmarks.

A server is a fresh ``initdb`` cluster in a temporary folder, started with the
machine's PostgreSQL binaries. PostgreSQL refuses to run as root, so when we are
root every server command runs as the ``postgres`` OS user.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

SUPERUSER = "postgres"
RUN_AS = "postgres"

# Throwaway data: durability buys nothing here and costs most of the run time.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "max_wal_size": "4GB",
    "listen_addresses": "127.0.0.1",
}


def pg_bindir() -> Path:
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            return candidate
    raise RuntimeError("PostgreSQL server binaries not found: install postgresql (initdb, pg_ctl)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", RUN_AS, "--", *argv]
    return argv


@dataclass
class PostgresServer:
    """One throwaway cluster. ``password`` belongs to the superuser ``postgres``."""

    name: str
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    settings: dict[str, str] = field(default_factory=dict)
    root: Path | None = None

    @property
    def datadir(self) -> Path:
        assert self.root is not None, "server not initialised"
        return self.root / "data"

    def dsn(self, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return psycopg.conninfo.make_conninfo(
            host="127.0.0.1", port=self.port, dbname=dbname, user=user, password=secret
        )

    def url(self, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        from urllib.parse import quote

        secret = self.password if password is None else password
        return f"postgresql://{quote(user, safe='')}:{quote(secret, safe='')}@127.0.0.1:{self.port}/{quote(dbname, safe='')}"

    def _run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(_as_server_user(argv), check=True, capture_output=True, text=True, **kwargs)

    def init(self) -> PostgresServer:
        self.root = Path(tempfile.mkdtemp(prefix=f"pgmig-{self.name}-"))
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.root, RUN_AS)
            shutil.chown(pwfile, RUN_AS)
        os.chmod(pwfile, 0o600)
        bindir = pg_bindir()
        self._run(
            [
                str(bindir / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER,
                f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
            ]
        )
        pwfile.unlink()
        conf = {**FAST_SETTINGS, "port": str(self.port), "unix_socket_directories": str(self.root), **self.settings}
        with open(self.datadir / "postgresql.auto.conf", "a") as handle:
            for key, value in conf.items():
                handle.write(f"{key} = '{value}'\n")
        return self

    def configure(self, **settings: str) -> None:
        """Persist extra settings; they take effect on the next (re)start."""
        self.settings.update(settings)
        with open(self.datadir / "postgresql.auto.conf", "a") as handle:
            for key, value in settings.items():
                handle.write(f"{key} = '{value}'\n")

    def start(self) -> PostgresServer:
        bindir = pg_bindir()
        self._run(
            [str(bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.root / "server.log"), "-w", "-t", "60", "start"]
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.root is None or not self.datadir.exists():
            return
        bindir = pg_bindir()
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop"]),
            capture_output=True, text=True,
        )

    def restart(self) -> None:
        self.stop()
        self.start()

    def is_running(self) -> bool:
        try:
            with psycopg.connect(self.dsn(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def destroy(self) -> None:
        self.stop("immediate")
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def execute(self, statement: sql.Composable | str, dbname: str = "postgres", params=None) -> None:
        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            conn.execute(statement, params)

    def create_database(self, dbname: str, owner: str = SUPERUSER) -> None:
        self.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), sql.Identifier(owner)))

    def create_role(self, role: str, password: str, *, login: bool = True) -> None:
        self.execute(
            sql.SQL("CREATE ROLE {} WITH {} PASSWORD {}").format(
                sql.Identifier(role), sql.SQL("LOGIN" if login else "NOLOGIN"), sql.Literal(password)
            )
        )

    def __enter__(self) -> PostgresServer:
        return self.init().start()

    def __exit__(self, *exc) -> None:
        self.destroy()


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
