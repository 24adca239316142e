"""A real pgbouncer in transaction mode in front of a throwaway server (Debian package)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from migration_engine.local.servers import RUN_AS, PostgresServer, free_port, wait_until

PGBOUNCER = "/usr/sbin/pgbouncer"


@dataclass
class Pgbouncer:
    backend: PostgresServer
    users: dict[str, str]
    port: int = field(default_factory=free_port)
    pool_mode: str = "transaction"
    root: Path | None = None
    process: subprocess.Popen | None = None
    # Optional TLS towards clients, as a managed pooler offers it (sslmode=require works then).
    client_tls_cert_file: Path | None = None
    client_tls_key_file: Path | None = None

    def start(self) -> Pgbouncer:
        binary = shutil.which("pgbouncer") or PGBOUNCER
        if not Path(binary).exists():
            raise RuntimeError("pgbouncer not installed: run scripts/ensure_system_packages.sh (Debian package pgbouncer)")
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="pgmig-pgbouncer-"))
        userlist = "".join(f'"{user}" "{password}"\n' for user, password in self.users.items())
        (self.root / "userlist.txt").write_text(userlist)
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={self.backend.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\n"
            f"unix_socket_dir = {self.root}\n"
            "auth_type = scram-sha-256\n"
            f"auth_file = {self.root / 'userlist.txt'}\n"
            f"pool_mode = {self.pool_mode}\n"
            "max_client_conn = 200\ndefault_pool_size = 20\n"
            "ignore_startup_parameters = extra_float_digits,options,statement_timeout,lock_timeout\n"
            f"logfile = {self.root / 'pgbouncer.log'}\n"
            f"pidfile = {self.root / 'pgbouncer.pid'}\n"
            + self._client_tls_settings()
        )
        argv = [binary, str(self.root / "pgbouncer.ini")]
        if os.geteuid() == 0:
            for path in [self.root, *self.root.iterdir()]:
                shutil.chown(path, RUN_AS)
            os.chmod(self.root / "userlist.txt", 0o600)
            argv = ["runuser", "-u", RUN_AS, "--", *argv]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if not wait_until(self._accepting, timeout=15):
            raise RuntimeError(f"pgbouncer did not start; see {self.root / 'pgbouncer.log'}")
        return self

    def _client_tls_settings(self) -> str:
        if not (self.client_tls_cert_file and self.client_tls_key_file):
            return ""
        return (
            "client_tls_sslmode = allow\n"
            f"client_tls_cert_file = {self.client_tls_cert_file}\n"
            f"client_tls_key_file = {self.client_tls_key_file}\n"
        )

    def _accepting(self) -> bool:
        import socket

        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def url(self, dbname: str, user: str, password: str, extra: str = "pgbouncer=true") -> str:
        from urllib.parse import quote

        return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/{quote(dbname, safe='')}?{extra}"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def destroy(self) -> None:
        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
