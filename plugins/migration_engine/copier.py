"""Copy one chunk from its source table to its target table, exactly once.

Rows stream ``COPY (SELECT ...) TO STDOUT`` -> ``COPY ... FROM STDIN`` block by
block (binary unless a column type forbids it), and the chunk's ledger row is
written in the same target transaction: a chunk is either fully there and
recorded, or absent. A recorded chunk is skipped unless ``force``. When the
chunk's key range already holds rows in the target (a re-sync, or dual-write
already running), rows go through a temporary staging table and are merged:
insert missing, update only rows that differ, delete rows the source lacks.

With a ``snapshot`` (``snapshots``), the source rows are read at that exported
snapshot, so every chunk of one source database sees the same instant. A chunk
recorded at another snapshot is copied again (merged) when ``recopy_other_snapshots``
is set: before the post-load constraints, all of a database's chunks must agree.

``max_mb_per_s`` paces the stream (``pacer``) so a busy source keeps serving the
apps while it is read. Works as a non-superuser: no session_replication_role, no COPY FREEZE.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psycopg
from psycopg import pq, sql

from migration_engine.canonical import row_text
from migration_engine.catalog import Column, copy_format, describe_table, matching_columns
from migration_engine.chunk_ledger import ensure_chunk_ledger, find_chunk, lock_chunk, record_chunk
from migration_engine.endpoints import Endpoint, redact
from migration_engine.manifest import Manifest, Table
from migration_engine.pacing import LoadAwarePacer, LoadBudget, Pacer, probe_on_server_ms
from migration_engine.segment import TableSegment
from migration_engine.snapshots import SourceSnapshot, import_snapshot

log = logging.getLogger(__name__)

STAGE_TABLE = "backfill_stage"
# Hand rows to libpq in blocks of this size: fewer calls, memory still bounded.
WRITE_BLOCK_BYTES = 1 << 20
MB = 1024 * 1024


class CopyError(RuntimeError):
    pass


def copy_chunk(
    source: Endpoint,
    target: Endpoint,
    manifest: Manifest,
    chunk: TableSegment | Mapping,
    *,
    force: bool = False,
    run_id: str = "manual",
    max_mb_per_s: float | None = None,
    load_budget: LoadBudget | None = None,
    snapshot: SourceSnapshot | None = None,
    recopy_other_snapshots: bool = False,
    pacers: dict[Endpoint, LoadAwarePacer] | None = None,
) -> dict:
    """Copy one chunk; returns a JSON-able summary (mode copy|merge|skipped, rows, bytes, seconds, MB/s,
    the rate it was held to and the seconds it waited for it, and with a ``load_budget`` the
    load-aware pacer's decisions). ``pacers``, the last load-aware pacer on each source of the task's
    chunks so far: this chunk's stream goes on from its source's, and leaves its own there."""
    chunk = TableSegment.of(chunk)
    table = manifest.table(chunk.table)
    if chunk.key is not None and (chunk.key,) != tuple(table.key):
        raise ValueError(f"{chunk.label}: ranged on {chunk.key!r}, but the table's key is {list(table.key)}")
    started = time.monotonic()
    try:
        with source.connect(autocommit=True) as src, \
                target.connect() as tgt, \
                _pacer(source, chunk.label, max_mb_per_s, load_budget, (pacers or {}).get(source)) as pacer:
            ensure_chunk_ledger(tgt, manifest)
            columns = matching_columns(
                table.qualified,
                describe_table(src, table.source_ident),
                describe_table(tgt, table.target_ident),
                source_name=".".join(table.source_ident),
                target_name=".".join(table.target_ident),
            )
            tgt.commit()
            result = _copy_in_transaction(src, tgt, manifest, table, chunk, columns, pacer, force=force, run_id=run_id,
                                          started=started, snapshot=snapshot, recopy_other_snapshots=recopy_other_snapshots)
    except psycopg.Error as exc:
        raise CopyError(f"{chunk.label}: copy failed, nothing committed: {redact(str(exc), source.password, target.password)}") from None
    if pacers is not None and isinstance(pacer, LoadAwarePacer):
        pacers[source] = pacer
    log.info(
        "%s: %s %d rows, %.1f MB in %.2f s (%.1f MB/s)%s", chunk.label, result["mode"], result["rows"],
        result["bytes"] / MB, result["seconds"], result["mb_per_s"],
        f"; inserted {result['inserted']}, updated {result['updated']}, deleted {result['deleted']}" if result["mode"] == "merge" else "",
    )
    if pacer.ceiling:
        log.info("%s: held to %g MB/s, waited %.2f s for it", chunk.label, pacer.ceiling, pacer.slept_s)
    if result["pacing"]:
        log.info("%s: load-aware pacing: %s", chunk.label, result["pacing"])
    return result


@contextmanager
def _pacer(source: Endpoint, label: str, max_mb_per_s: float | None, load_budget: LoadBudget | None,
           after: LoadAwarePacer | None) -> Iterator[Pacer]:
    """A fixed-rate pacer, or with a budget one that probes the source on a connection of its own, going on
    from ``after``."""
    if load_budget is None:
        yield Pacer(max_mb_per_s)
        return
    with source.connect(autocommit=True) as probe_conn:
        yield LoadAwarePacer(max_mb_per_s, load_budget, lambda: probe_on_server_ms(probe_conn), label=label, after=after)


def _copy_in_transaction(src, tgt, manifest, table: Table, chunk: TableSegment, columns: tuple[Column, ...], pacer: Pacer, *,
                         force, run_id, started, snapshot: SourceSnapshot | None, recopy_other_snapshots: bool) -> dict:
    fmt = copy_format(columns)
    snapshot_id = snapshot.snapshot_id if snapshot else None
    with tgt.transaction():
        lock_chunk(tgt, chunk)
        recorded = find_chunk(tgt, manifest, chunk)
        read_elsewhere = recorded is not None and recopy_other_snapshots and recorded["source_snapshot"] != snapshot_id
        if recorded and not force and not read_elsewhere:
            return _summary(chunk, "skipped", fmt, rows=recorded["rows"], nbytes=0, started=started, pacer=pacer)
        with _source_reading(src, snapshot):
            if _range_has_rows(tgt, table, chunk):
                counts = _merge(src, tgt, table, chunk, columns, fmt, pacer)
                mode = "merge"
            else:
                rows, nbytes = _stream(src, tgt, table, chunk, columns, fmt, sql.Identifier(*table.target_ident), pacer)
                counts = {"rows": rows, "bytes": nbytes, "inserted": rows, "updated": 0, "deleted": 0}
                mode = "copy"
        result = _summary(chunk, mode, fmt, rows=counts["rows"], nbytes=counts["bytes"], started=started, pacer=pacer)
        result.update(inserted=counts["inserted"], updated=counts["updated"], deleted=counts["deleted"],
                      source_snapshot=snapshot_id)
        record_chunk(tgt, manifest, chunk, result, run_id)
    return result


@contextmanager
def _source_reading(src: psycopg.Connection, snapshot: SourceSnapshot | None):
    """One read-only source transaction for the chunk, at the shared snapshot when there is one."""
    if snapshot is None:
        yield
        return
    src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    src.read_only = True
    with src.transaction():
        import_snapshot(src, snapshot)
        yield


def _summary(chunk: TableSegment, mode: str, fmt: str, *, rows: int, nbytes: int, started: float, pacer: Pacer) -> dict:
    seconds = round(time.monotonic() - started, 3)
    return {
        "chunk": chunk.label,
        "table": chunk.table,
        "mode": mode,
        "format": fmt,
        "rows": int(rows),
        "bytes": int(nbytes),
        "seconds": seconds,
        "mb_per_s": round(nbytes / MB / seconds, 2) if seconds > 0 else 0.0,
        "max_mb_per_s": pacer.ceiling,
        "paced_s": round(pacer.slept_s, 3),
        "pacing": pacer.report(),
        "inserted": 0,
        "updated": 0,
        "deleted": 0,
        "source_snapshot": None,
    }


def _range_has_rows(tgt: psycopg.Connection, table: Table, chunk: TableSegment) -> bool:
    statement = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {})").format(
        sql.Identifier(*table.target_ident), chunk.predicate()
    )
    return tgt.execute(statement, chunk.params).fetchone()[0]


def _column_list(columns: tuple[Column, ...]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)


def _stream(src, tgt, table: Table, chunk: TableSegment, columns: tuple[Column, ...], fmt: str, into: sql.Composable,
            pacer: Pacer) -> tuple[int, int]:
    """Pipe the chunk's source rows into ``into`` at the pacer's rate; returns (rows, bytes).
    Never holds more than one block."""
    predicate = chunk.predicate()
    options = sql.SQL("(FORMAT binary)" if fmt == "binary" else "(FORMAT text)")
    copy_out = sql.SQL("COPY (SELECT {} FROM {} WHERE {}) TO STDOUT {}").format(
        _column_list(columns), sql.Identifier(*table.source_ident), predicate, options
    )
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN {}").format(into, _column_list(columns), options)
    nbytes = 0
    with src.cursor() as out_cur, tgt.cursor() as in_cur:
        with in_cur.copy(copy_in) as into_copy:
            for block in _copy_out_blocks(out_cur, copy_out, chunk.params):
                nbytes += len(block)
                into_copy.write(block)
                pacer.passed(len(block))
        rows = in_cur.rowcount
    return rows, nbytes


def _copy_out_blocks(cursor, statement: sql.Composable, params) -> Iterator[bytearray]:
    """The output of a ``COPY ... TO STDOUT`` in blocks of about WRITE_BLOCK_BYTES, each valid until the next.

    Rows come straight from libpq: psycopg's ``Copy.read`` costs a generator round trip per row,
    which was most of a chunk's client CPU at a few hundred bytes a row. psycopg still starts the
    COPY and, if the consumer stops early, cancels it."""
    with cursor.copy(statement, params):
        pgconn = cursor.connection.pgconn
        pending = bytearray()
        while _next_row(pgconn, pending) >= 0:
            if len(pending) >= WRITE_BLOCK_BYTES:
                yield pending
                pending.clear()
        if pending:
            yield pending
        # The copy is done: its closing result says whether it ended well. All results are read
        # before raising, so the connection is idle again and psycopg has nothing to cancel.
        failed = [r for r in iter(pgconn.get_result, None) if r.status != pq.ExecStatus.COMMAND_OK]
        if failed:
            raise psycopg.errors.error_from_result(failed[0], encoding=cursor.connection.info.encoding)


def _next_row(pgconn: pq.abc.PGconn, into: bytearray) -> int:
    """Append the next row to ``into``, waiting for the server if none is buffered; -1 once the copy is done."""
    while True:
        nbytes, data = pgconn.get_copy_data(1)
        if nbytes > 0:
            into += data
            return nbytes
        if nbytes == -1:
            return -1
        if nbytes < -1:
            raise psycopg.OperationalError(f"COPY TO STDOUT failed: {pgconn.get_error_message()}")
        select.select([pgconn.socket], [], [])
        pgconn.consume_input()


def _merge(src, tgt, table: Table, chunk: TableSegment, columns: tuple[Column, ...], fmt: str, pacer: Pacer) -> dict:
    """Stage the source rows, then make the target range equal to them, touching only rows that differ."""
    target_table = sql.Identifier(*table.target_ident)
    stage = sql.Identifier("pg_temp", STAGE_TABLE)
    key = table.key
    tgt.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(stage))
    tgt.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
        stage, _column_list(columns), target_table))
    rows, nbytes = _stream(src, tgt, table, chunk, columns, fmt, stage, pacer)
    tgt.execute(sql.SQL("ANALYZE {}").format(stage))
    names = [c.name for c in columns]
    non_key = [n for n in names if n not in key]
    if non_key:
        on_conflict = sql.SQL("DO UPDATE SET {} WHERE {} IS DISTINCT FROM {}").format(
            sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(n), sql.Identifier("excluded", n)) for n in non_key),
            row_text(names, "t"),
            row_text(names, "excluded"),
        )
    else:
        on_conflict = sql.SQL("DO NOTHING")
    upsert = sql.SQL(
        "WITH changed AS (INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {stage} ON CONFLICT ({key}) {action} "
        "RETURNING (t.xmax = 0) AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM changed"
    ).format(target=target_table, cols=_column_list(columns), stage=stage,
             key=sql.SQL(", ").join(map(sql.Identifier, key)), action=on_conflict)
    inserted, updated = tgt.execute(upsert).fetchone()
    predicate = chunk.predicate(alias="t")
    delete = sql.SQL("DELETE FROM {} AS t WHERE {} AND NOT EXISTS (SELECT 1 FROM {} AS s WHERE {})").format(
        target_table, predicate, stage,
        sql.SQL(" AND ").join(sql.SQL("{} = {}").format(sql.Identifier("s", k), sql.Identifier("t", k)) for k in key),
    )
    deleted = tgt.execute(delete, chunk.params).rowcount
    tgt.execute(sql.SQL("DROP TABLE {}").format(stage))
    return {"rows": rows, "bytes": nbytes, "inserted": inserted, "updated": updated, "deleted": deleted}
