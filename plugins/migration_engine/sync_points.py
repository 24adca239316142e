"""Where each table was last known level with its source, as the source's xmin horizon.

Before dual-write only the migration writes the target, so a drifted row whose
source version is older than the table's horizon cannot be an app write the
target has yet to receive: it is unexplained (the target was changed by
something else, or lost the row). Newer versions are writes in flight.

The horizon is the catch-up's (``sync_points``, taken at the start of its last
pass that left nothing behind); before any catch-up, the oldest snapshot the
backfill's chunks of the table were read at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from migration_engine import sqlfiles
from migration_engine.chunk_ledger import ledger_ident
from migration_engine.manifest import Manifest, Table
from migration_engine.snapshots import SNAPSHOTS_TABLE

SYNC_POINTS_TABLE = "sync_points"


@dataclass(frozen=True)
class Horizon:
    xmin_horizon: int
    at: datetime
    by: str  # "catch-up run <id>" or "backfill snapshot"


def _identifiers(manifest: Manifest) -> dict:
    return {
        "sync_points": (manifest.control_schema, SYNC_POINTS_TABLE),
        "backfill_chunks": ledger_ident(manifest),
        "source_snapshots": (manifest.control_schema, SNAPSHOTS_TABLE),
    }


def _run(conn: psycopg.Connection, manifest: Manifest, name: str, params: dict | None = None) -> psycopg.Cursor:
    return sqlfiles.run(conn, f"sync_points/{name}", params, **_identifiers(manifest))


def ensure_table(conn: psycopg.Connection, manifest: Manifest) -> None:
    with conn.transaction():
        _run(conn, manifest, "create_sync_points")


def caught_up(conn: psycopg.Connection, manifest: Manifest, table: Table) -> Horizon | None:
    """The table's last catch-up horizon, None before its first clean catch-up pass."""
    row = _run(conn, manifest, "select_sync_point", {"table_name": table.qualified}).fetchone()
    return Horizon(row[0], row[1], f"catch-up run {row[2]}") if row else None


def baseline(conn: psycopg.Connection, manifest: Manifest, table: Table) -> Horizon | None:
    """The horizon drift is judged against: the catch-up's, else the backfill's snapshots; None when unknown."""
    found = caught_up(conn, manifest, table)
    if found:
        return found
    horizon, at = _run(conn, manifest, "select_copy_horizon", {"table_name": table.qualified, "service": table.service}).fetchone()
    return Horizon(horizon, at, "backfill snapshot") if horizon is not None else None


def record(conn: psycopg.Connection, manifest: Manifest, table: Table, xmin_horizon: int, dag_id: str, run_id: str) -> None:
    with conn.transaction():
        _run(conn, manifest, "upsert_sync_point", {"table_name": table.qualified, "xmin_horizon": xmin_horizon,
                                                     "dag_id": dag_id, "run_id": run_id})
