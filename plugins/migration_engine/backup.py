"""Verified source backups with pg_dump: directory format, parallel jobs.

Credentials never reach a command line: pg_dump and pg_restore get the
connection as ``PG*`` variables in the child's environment only, and the
password through a private ``PGPASSFILE`` (mode 0600) deleted afterwards.
Their output is redacted before it is logged or raised.

A backup is written to a temporary folder and renamed into place only after
``pg_restore --list`` has read it back and listed every mapped table's data,
so a folder with a final name is always a complete, verified backup. A re-run
reuses the recorded backup when the schema fingerprint is the same and the
folder still hashes to the recorded sha256; otherwise it writes a new one.

Restore (into an empty database of the same name)::

    pg_restore --jobs=4 --dbname=<db> <backup folder>
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Collection
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from migration_engine.checks import CheckFailed
from migration_engine.endpoints import Endpoint, redact

log = logging.getLogger(__name__)

# libpq connection parameters and the environment variables that carry them.
LIBPQ_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "sslnegotiation": "PGSSLNEGOTIATION",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE",
}


class BackupError(CheckFailed):
    pass


@dataclass(frozen=True)
class BackupRecord:
    service: str
    path: str
    size_bytes: int
    sha256: str
    fingerprint_sha256: str
    tables_listed: int
    taken_at: str
    reused: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def default_backup_root() -> Path:
    """``MIGRATION_BACKUP_DIR``, else ``$AIRFLOW_HOME/backups``."""
    configured = os.environ.get("MIGRATION_BACKUP_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "backups"


def client_binary(name: str) -> str:
    """pg_dump / pg_restore: from ``MIGRATION_PG_BINDIR`` when set, else from PATH."""
    bindir = os.environ.get("MIGRATION_PG_BINDIR")
    found = str(Path(bindir) / name) if bindir else shutil.which(name)
    if not found or not Path(found).exists():
        raise BackupError(f"{name} not found: install the PostgreSQL client, or set MIGRATION_PG_BINDIR to its folder")
    return found


@contextmanager
def libpq_environment(endpoint: Endpoint):
    """The child's environment: connection as PG* variables, password in a private passfile."""
    params = endpoint.params
    password = params.pop("password", None)
    params["application_name"] = endpoint.session_name()
    unknown = sorted(set(params) - set(LIBPQ_ENV))
    if unknown:
        raise BackupError(f"{endpoint.name}: connection parameter(s) {', '.join(unknown)} cannot be passed to pg_dump")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({LIBPQ_ENV[k]: str(v) for k, v in params.items()})
    with tempfile.TemporaryDirectory(prefix="pgmig-pass-") as private:
        if password:
            passfile = Path(private) / "pgpass"
            escaped = password.replace("\\", "\\\\").replace(":", "\\:")
            passfile.touch(mode=0o600)
            passfile.write_text(f"*:*:*:*:{escaped}\n")
            env["PGPASSFILE"] = str(passfile)
        yield env


def _run(argv: list[str], env: dict, endpoint: Endpoint, what: str) -> str:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = redact((proc.stderr or proc.stdout).strip()[-2000:], endpoint.password)
        raise BackupError(f"{what} of {endpoint.name} ({endpoint.describe()}) failed (exit {proc.returncode}): {detail}")
    return proc.stdout


def folder_digest(folder: Path) -> tuple[int, str]:
    """(total bytes, sha256 over every file's relative path and content, in name order)."""
    digest = hashlib.sha256()
    size = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    return size, digest.hexdigest()


def verify_listing(folder: Path, endpoint: Endpoint, expected_tables: Collection[tuple[str, str]]) -> int:
    """``pg_restore --list`` must read the backup and list data for every expected table."""
    # Reading the archive's table of contents needs no connection.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    listing = _run([client_binary("pg_restore"), "--list", str(folder)], env, endpoint, "pg_restore --list")
    listed = set()
    for line in listing.splitlines():
        # "<id>; <oid> <oid> TABLE DATA <schema> <table> <owner>"
        parts = line.split()
        if "TABLE" in parts and "DATA" in parts:
            at = parts.index("DATA")
            if len(parts) > at + 2:
                listed.add((parts[at + 1], parts[at + 2]))
    missing = sorted(f"{s}.{t}" for s, t in expected_tables if (s, t) not in listed)
    if missing:
        raise BackupError(f"backup {folder} of {endpoint.name} lists no data for: {', '.join(missing)}")
    return len(listed)


def reusable(previous: dict | None, fingerprint_sha256: str, endpoint: Endpoint, expected_tables) -> BackupRecord | None:
    """The recorded backup, if it was taken for the same schema and is still intact."""
    if not previous or previous.get("fingerprint_sha256") != fingerprint_sha256:
        return None
    folder = Path(previous["path"])
    if not folder.is_dir():
        log.info("recorded backup %s is gone; taking a new one", folder)
        return None
    size, sha = folder_digest(folder)
    if sha != previous.get("sha256"):
        log.warning("recorded backup %s no longer matches its sha256; taking a new one", folder)
        return None
    verify_listing(folder, endpoint, expected_tables)
    return BackupRecord(**{**previous, "size_bytes": size, "reused": True})


def back_up(
    endpoint: Endpoint,
    service: str,
    root: Path,
    fingerprint_sha256: str,
    expected_tables: Collection[tuple[str, str]],
    *,
    jobs: int = 2,
    previous: dict | None = None,
    fresh: bool = False,
) -> BackupRecord:
    """Dump one source database, verify it, and move it into place atomically."""
    if not fresh:
        existing = reusable(previous, fingerprint_sha256, endpoint, expected_tables)
        if existing:
            log.info("reusing verified backup %s (same schema fingerprint, sha256 unchanged)", existing.path)
            return existing
    folder = Path(root) / service
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    taken_at = datetime.now(UTC)
    final = folder / f"{taken_at:%Y%m%dT%H%M%SZ}-{fingerprint_sha256[:12]}"
    temporary = folder / f".partial-{final.name}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        with libpq_environment(endpoint) as env:
            _run(
                [client_binary("pg_dump"), "--format=directory", f"--jobs={jobs}", "--no-password", f"--file={temporary}"],
                env,
                endpoint,
                "pg_dump",
            )
        listed = verify_listing(temporary, endpoint, expected_tables)
        size, sha = folder_digest(temporary)
        os.rename(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    record = BackupRecord(service, str(final), size, sha, fingerprint_sha256, listed, taken_at.isoformat())
    log.info("backup of %s written to %s: %d bytes, sha256 %s, %d tables listed", service, final, size, sha, listed)
    return record
