"""One consistent snapshot per source database for the backfill's copy.

As ``pg_dump --jobs`` and pgcopydb do, every chunk of one source database reads
at one exported snapshot (``pg_export_snapshot()`` / ``SET TRANSACTION
SNAPSHOT``): the target ends the copy as each source was at one instant, so
foreign keys validate after a copy of any length while the apps keep writing.

A snapshot lives as long as the transaction that exported it. A *holder*
process (``snapshot_holder``) keeps that transaction open for the whole copy;
it runs detached from the task that starts it, so the design works the same
under ``airflow dags test`` (one task at a time, one process) and on parallel
Celery workers. The holder publishes its snapshot in the control schema's
``source_snapshots``: id, WAL position, xmin horizon and its backend pid on the
source, which lets any worker see whether it is still alive.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from migration_engine import sqlfiles
from migration_engine.checks import CheckFailed
from migration_engine.endpoints import Endpoint

SNAPSHOTS_TABLE = "source_snapshots"
# A holder gives up after this long even if nobody releases it: vacuum must not stay blocked forever.
DEFAULT_MAX_HOLD_S = 24 * 3600


class SnapshotLost(CheckFailed):
    """The snapshot a chunk must read at is gone; a retry cannot bring it back."""


@dataclass(frozen=True)
class SourceSnapshot:
    service: str
    snapshot_id: str
    lsn: str
    xmin_horizon: int
    backend_pid: int
    holder: str
    run_id: str

    def describe(self) -> str:
        return (f"snapshot {self.snapshot_id} of the {self.service} source (LSN {self.lsn}, run {self.run_id}, "
                f"held by {self.holder}, backend pid {self.backend_pid})")

    def to_dict(self) -> dict:
        return {"service": self.service, "snapshot_id": self.snapshot_id, "lsn": self.lsn,
                "xmin_horizon": self.xmin_horizon, "backend_pid": self.backend_pid, "holder": self.holder,
                "run_id": self.run_id}

    @classmethod
    def from_dict(cls, value: dict) -> SourceSnapshot:
        return cls(**{k: value[k] for k in ("service", "snapshot_id", "lsn", "xmin_horizon", "backend_pid", "holder", "run_id")})


def _statement(name: str, control_schema: str) -> sql.Composed:
    return sqlfiles.statement(f"snapshots/{name}", source_snapshots=(control_schema, SNAPSHOTS_TABLE))


def publish(conn: psycopg.Connection, control_schema: str, run_id: str, service: str, *, state: str,
            snapshot: dict | None = None, error: str | None = None, holder: str | None = None) -> None:
    snapshot = snapshot or {}
    with conn.transaction():
        conn.execute(_statement("publish_snapshot", control_schema), {
            "run_id": run_id, "service": service, "state": state, "snapshot_id": snapshot.get("snapshot_id"),
            "lsn": snapshot.get("lsn"), "xmin_horizon": snapshot.get("xmin_horizon"),
            "backend_pid": snapshot.get("backend_pid"), "holder": holder, "error": error,
            "taken_at": snapshot.get("taken_at"),
        })


def end(conn: psycopg.Connection, control_schema: str, service: str, snapshot_id: str, *, state: str,
        error: str | None = None) -> None:
    with conn.transaction():
        conn.execute(_statement("end_snapshot", control_schema), {
            "service": service, "snapshot_id": snapshot_id, "state": state, "error": error})


def still_held(conn: psycopg.Connection, control_schema: str, service: str, snapshot_id: str) -> bool:
    return conn.execute(_statement("select_snapshot_held", control_schema),
                        {"service": service, "snapshot_id": snapshot_id}).fetchone()[0]


def held_snapshot(conn: psycopg.Connection, control_schema: str, service: str) -> dict | None:
    """The newest snapshot of ``service`` some run still holds, with the run that holds it."""
    cur = conn.execute(_statement("select_held_snapshot", control_schema), {"service": service})
    row = cur.fetchone()
    return dict(zip([d.name for d in cur.description], row, strict=True)) if row else None


def run_snapshots(conn: psycopg.Connection, control_schema: str, run_id: str) -> list[dict]:
    cur = conn.execute(_statement("select_run_snapshots", control_schema), {"run_id": run_id})
    names = [d.name for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def release(conn: psycopg.Connection, control_schema: str, run_id: str) -> None:
    """Mark the run's snapshots released: their holders end their transactions within a ping."""
    with conn.transaction():
        conn.execute(_statement("release_run_snapshots", control_schema), {"run_id": run_id})


def release_other_runs(conn: psycopg.Connection, control_schema: str, run_id: str) -> None:
    with conn.transaction():
        conn.execute(_statement("release_other_runs_snapshots", control_schema), {"run_id": run_id})


def holder_alive(source: psycopg.Connection, backend_pid: int) -> bool:
    return sqlfiles.run(source, "snapshots/select_backend_alive", {"backend_pid": backend_pid}).fetchone()[0]


def start_holder(source: Endpoint, target: Endpoint, *, control_schema: str, run_id: str, service: str,
                 application_name: str, log_file: Path, max_hold_s: float = DEFAULT_MAX_HOLD_S) -> int:
    """Start a detached holder process for one source; returns its pid.

    The connection strings reach it on its standard input, never on its command
    line or in its environment, so no process listing shows a password.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    with open(log_file, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "migration_engine.snapshot_holder"],
            stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=env,
            # Its own session: the task ending (or being killed) does not end the snapshot.
            start_new_session=True,
        )
    order = {
        "source": source.conninfo, "source_name": source.name, "target": target.conninfo, "target_name": target.name,
        "control_schema": control_schema, "run_id": run_id, "service": service,
        "application_name": application_name, "max_hold_s": max_hold_s,
        "holder": f"{socket.gethostname()}:{process.pid}",
    }
    process.stdin.write(json.dumps(order).encode())
    process.stdin.close()
    return process.pid


def import_snapshot(source: psycopg.Connection, snapshot: SourceSnapshot) -> None:
    """Start a REPEATABLE READ, read-only transaction on ``source`` at ``snapshot`` (the caller's
    ``source.transaction()`` must be open and this its first statement)."""
    try:
        source.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot.snapshot_id)))
    except psycopg.errors.InvalidParameterValue:
        raise SnapshotLost(
            f"{snapshot.describe()} is gone: its holder ended before the copy finished (killed, its host or the "
            f"source restarted, or a server timeout ended its transaction). Chunks cannot read at it any more; "
            f"trigger backfill again: the new run takes a new snapshot and copies again, merging, what was read at this one"
        ) from None
