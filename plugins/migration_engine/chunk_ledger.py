"""The backfill's chunk ledger in the control schema: which chunks are copied, and progress.

A chunk's ledger row is written in the same target transaction as its rows
(see ``copier``), so the ledger is the truth about what the target holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import psycopg
from psycopg.types.json import Jsonb

from migration_engine import catalog, sqlfiles
from migration_engine.endpoints import Endpoint
from migration_engine.manifest import Manifest
from migration_engine.segment import TableSegment
from migration_engine.snapshots import SNAPSHOTS_TABLE

LEDGER_TABLE = "backfill_chunks"


def ledger_ident(manifest: Manifest) -> tuple[str, str]:
    return (manifest.control_schema, LEDGER_TABLE)


def ensure_chunk_ledger(conn: psycopg.Connection, manifest: Manifest) -> None:
    """Create the control schema and ledger table if missing (committed at once)."""
    # The snapshots table is created last: once it exists, so does everything before it.
    if not catalog.table_exists(conn, (manifest.control_schema, SNAPSHOTS_TABLE)):
        with conn.transaction():
            # Concurrent first chunks would race on CREATE ... IF NOT EXISTS; one at a time.
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (LEDGER_TABLE,))
            sqlfiles.run(conn, "ledger/create_control_schema", control_schema=manifest.control_schema)
            sqlfiles.run(conn, "backfill/create_backfill_chunks", backfill_chunks=ledger_ident(manifest))
            sqlfiles.run(conn, "snapshots/add_chunk_snapshot_column", backfill_chunks=ledger_ident(manifest))
            sqlfiles.run(conn, "backfill/add_chunk_pacing_column", backfill_chunks=ledger_ident(manifest))
            sqlfiles.run(conn, "snapshots/create_source_snapshots",
                         source_snapshots=(manifest.control_schema, SNAPSHOTS_TABLE))
    if not conn.autocommit:
        conn.commit()


def lock_chunk(conn: psycopg.Connection, chunk: TableSegment) -> None:
    sqlfiles.run(conn, "backfill/lock_chunk", {"chunk_id": chunk.chunk_id})


def find_chunk(conn: psycopg.Connection, manifest: Manifest, chunk: TableSegment) -> dict | None:
    cur = sqlfiles.run(conn, "backfill/find_chunk", {"chunk_id": chunk.chunk_id}, backfill_chunks=ledger_ident(manifest))
    row = cur.fetchone()
    return dict(zip([d.name for d in cur.description], row, strict=True)) if row else None


def record_chunk(conn: psycopg.Connection, manifest: Manifest, chunk: TableSegment, result: Mapping, run_id: str) -> None:
    sqlfiles.run(
        conn, "backfill/record_chunk",
        {
            "chunk_id": chunk.chunk_id,
            "table_name": chunk.table,
            "lower_bound": None if chunk.lower is None else str(chunk.lower),
            "upper_bound": None if chunk.upper is None else str(chunk.upper),
            "label": chunk.label,
            "mode": result["mode"],
            "copy_format": result["format"],
            "rows": result["rows"],
            "bytes": result["bytes"],
            "inserted": result["inserted"],
            "updated": result["updated"],
            "deleted": result["deleted"],
            "seconds": result["seconds"],
            "run_id": run_id,
            "source_snapshot": result.get("source_snapshot"),
            "pacing": None if result.get("pacing") is None else Jsonb(result["pacing"]),
        },
        backfill_chunks=ledger_ident(manifest),
    )


def read_progress(conn: psycopg.Connection, manifest: Manifest) -> dict[str, dict]:
    """Per table recorded so far: chunks, rows, bytes, the wall time they span and the last chunk's time (reads only)."""
    cur = sqlfiles.run(conn, "backfill/read_backfill_progress", backfill_chunks=ledger_ident(manifest))
    names = [d.name for d in cur.description]
    return {row[0]: dict(zip(names[1:], row[1:], strict=True)) for row in cur.fetchall()}


def estimate(chunks_done: int, chunks_total: int, rows: int, wall_seconds: float) -> tuple[float | None, float | None]:
    """Rows per second over the wall time so far, and seconds left for the chunks not yet
    copied at that rate and the average chunk size so far (None when there is nothing to go on)."""
    rate = float(rows) / float(wall_seconds) if wall_seconds else None
    remaining = max(0, chunks_total - chunks_done)
    eta = None
    if remaining == 0:
        eta = 0.0
    elif rate and chunks_done:
        # Rounded up: work is left, so a fast table never shows 0.0 s before it is done.
        eta = math.ceil(remaining * (float(rows) / chunks_done) / rate * 10) / 10
    return (round(rate, 1) if rate else None), eta


def backfill_progress(target: Endpoint, manifest: Manifest, planned: Mapping[str, int]) -> dict[str, dict]:
    """Per table: chunks done of planned, rows, rows/s over the wall time so far, and seconds left.

    ``planned`` maps each table (``wallet.users``) to its planned chunk count.
    Chunks recorded for tables not in ``planned`` are reported too (planned 0).
    """
    with target.connect(autocommit=True) as conn:
        ensure_chunk_ledger(conn, manifest)
        done = read_progress(conn, manifest)
    progress = {}
    for table in sorted(set(planned) | set(done)):
        row = done.get(table, {})
        chunks_done, rows, total = int(row.get("chunks_done") or 0), int(row.get("rows") or 0), planned.get(table, 0)
        rate, eta = estimate(chunks_done, total, rows, row.get("wall_seconds") or 0)
        progress[table] = {
            "chunks_done": chunks_done,
            "chunks_total": int(total),
            "rows": rows,
            "bytes": int(row.get("bytes") or 0),
            "rows_per_s": rate,
            "eta_s": eta,
        }
    return progress
