"""Backfill chunks: a table's segments (``segment.TableSegment``), planned from the data's real distribution.

Each table is cut into about as many chunks as its size asks for (by rows or by
bytes), all tables together staying within one budget of mapped tasks; the cuts
are percentiles of the key, so skewed keys still give balanced chunks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import psycopg
from psycopg import sql

from migration_engine.catalog import describe_table, size_estimate
from migration_engine.manifest import Manifest, Table
from migration_engine.segment import TableSegment, sample_percentiles

log = logging.getLogger(__name__)

DEFAULT_TARGET_BYTES = 256 * 1024 * 1024
# Airflow's default [core] max_map_length is 1024; keep room for other mapped tasks.
DEFAULT_MAX_CHUNKS_TOTAL = 1000
# Below this many rows the key itself is read for exact percentiles; above, a sample.
EXACT_PERCENTILE_ROWS = 2_000_000
# Below this estimated size reltuples is replaced by an exact count(*).
EXACT_COUNT_ROWS = 1_000_000
SAMPLE_ROWS = 200_000
SAMPLE_SEED = 20260101


def wanted_chunks(rows: int, total_bytes: int, *, target_rows: int | None, target_bytes: int) -> int:
    """How many chunks a table wants: by rows if a row target is given, else by bytes."""
    if rows <= 0:
        return 1
    if target_rows:
        return max(1, math.ceil(rows / target_rows))
    return max(1, math.ceil(total_bytes / target_bytes))


def share_budget(wanted: Mapping[str, int], max_total: int) -> dict[str, int]:
    """Cap each table's chunk count so the sum stays within ``max_total``, proportionally.

    Every table keeps at least one chunk, so ``max_total`` must be at least the number of tables.
    """
    if max_total < len(wanted):
        raise ValueError(f"max_chunks_total={max_total} is below the number of tables ({len(wanted)}); every table needs a chunk")
    total = sum(wanted.values())
    if total <= max_total:
        return dict(wanted)
    spare = max_total - len(wanted)
    extra = sum(n - 1 for n in wanted.values())
    return {name: 1 + math.floor((n - 1) * spare / extra) for name, n in wanted.items()}


def percentile_fractions(count: int) -> list[float]:
    """The cut points of ``count`` equal slices: 1/n, 2/n, ... (n-1)/n."""
    return [i / count for i in range(1, count)]


def _catalog_size(conn: psycopg.Connection, table: Table) -> tuple[int | None, int]:
    size = size_estimate(conn, table.source_ident)
    if size is None:
        raise ValueError(f"{table.qualified}: source table {'.'.join(table.source_ident)} does not exist")
    return size


def table_bytes(conn: psycopg.Connection, table: Table) -> int:
    """The source table's total size, from the catalog alone: no row is read."""
    return _catalog_size(conn, table)[1]


def table_size(conn: psycopg.Connection, table: Table) -> tuple[int, int]:
    """(rows, bytes) of the source table: the planner's estimate when large, an exact count when small or unanalysed."""
    rows, total_bytes = _catalog_size(conn, table)
    if rows is None or rows < EXACT_COUNT_ROWS:
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table.source_ident))).fetchone()[0]
    return rows, total_bytes


def plan_chunks(
    conn: psycopg.Connection,
    table: Table,
    *,
    target_rows: int | None = None,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    max_chunks: int = DEFAULT_MAX_CHUNKS_TOTAL,
    size: tuple[int, int] | None = None,
) -> list[TableSegment]:
    """Balanced chunks of one source table (``conn`` is a connection to its source database).

    ``table.chunk_rows`` from the manifest wins over ``target_rows``; ``size``
    may pass (rows, bytes) already measured.
    """
    described = describe_table(conn, table.source_ident, table.key)
    if described is None:
        raise ValueError(f"{table.qualified}: source table {'.'.join(table.source_ident)} does not exist")
    if len(table.key) == 1 and described.column(table.key[0]) is None:
        raise ValueError(f"{table.qualified}: key column {table.key[0]!r} not found in source table {'.'.join(table.source_ident)}")
    kind = described.key_kind
    if kind is None:
        log.info("%s: key %s is composite or not integer/uuid/text: one whole-table chunk", table.qualified, list(table.key))
        return [TableSegment(table.qualified, None, None)]
    whole = TableSegment(table.qualified, table.key[0], kind)
    rows, total_bytes = size or table_size(conn, table)
    count = min(max_chunks, wanted_chunks(rows, total_bytes, target_rows=table.chunk_rows or target_rows, target_bytes=target_bytes))
    if count <= 1:
        return [whole]
    fractions = percentile_fractions(count)
    # Small tables are read whole for exact cuts; a sample of larger ones is enough.
    percent = 100.0 if rows <= EXACT_PERCENTILE_ROWS else min(100.0, 100.0 * max(SAMPLE_ROWS, 20 * len(fractions)) / rows)
    return whole.split(sample_percentiles(conn, table.source_ident, whole.key, kind, fractions, percent=percent, seed=SAMPLE_SEED))


def plan_all(
    manifest: Manifest,
    source_endpoints: Mapping,
    *,
    target_rows: int | None = None,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    max_chunks_total: int = DEFAULT_MAX_CHUNKS_TOTAL,
) -> list[TableSegment]:
    """Chunks of every manifest table (parents first), at most ``max_chunks_total`` in all.

    ``source_endpoints`` maps service name to its source ``Endpoint``.
    """
    sizes: dict[str, tuple[int, int]] = {}
    plans: list[TableSegment] = []
    connections = {}
    try:
        for service in manifest.services:
            connections[service.name] = source_endpoints[service.name].connect(autocommit=True)
        wanted = {}
        for table in manifest.tables:
            sizes[table.qualified] = table_size(connections[table.service], table)
            rows, total_bytes = sizes[table.qualified]
            wanted[table.qualified] = wanted_chunks(rows, total_bytes, target_rows=table.chunk_rows or target_rows, target_bytes=target_bytes)
        budget = share_budget(wanted, max_chunks_total)
        for table in manifest.tables:
            plans.extend(plan_chunks(
                connections[table.service], table, target_rows=target_rows, target_bytes=target_bytes,
                max_chunks=budget[table.qualified], size=sizes[table.qualified],
            ))
    finally:
        for conn in connections.values():
            conn.close()
    return plans
