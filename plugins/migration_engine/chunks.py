"""Chunks: key-range slices of a table, planned from the data's real distribution.

A chunk is ``[lower, upper)`` on the table's single key column, ``None`` meaning
an open end. The first chunk of a table is open below and the last open above,
so rows inserted later beyond today's max key are still covered.

Key kinds: ``integer`` (smallint/integer/bigint), ``uuid`` and ``text``
(text/varchar). Text keys are always compared with ``COLLATE "C"`` (byte order,
which for UTF-8 is code-point order, the same order Python uses for ``str``),
so a range means the same rows on source and target whatever their collations.
A table whose key is composite or of another type cannot be ranged: it is
planned as one whole-table chunk (``kind`` None), and a bounded chunk for it is
an error.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql

from migration_engine.manifest import Manifest, Table

log = logging.getLogger(__name__)

KEY_KINDS = ("integer", "uuid", "text")
TYPE_KINDS = {
    "smallint": "integer", "integer": "integer", "bigint": "integer",
    "uuid": "uuid",
    "text": "text", "character varying": "text",
}

DEFAULT_TARGET_BYTES = 256 * 1024 * 1024
# Airflow's default [core] max_map_length is 1024; keep room for other mapped tasks.
DEFAULT_MAX_CHUNKS_TOTAL = 1000
# Below this many rows the key itself is read for exact percentiles; above, a sample.
EXACT_PERCENTILE_ROWS = 2_000_000
# Below this estimated size reltuples is replaced by an exact count(*).
EXACT_COUNT_ROWS = 1_000_000
SAMPLE_ROWS = 200_000
SAMPLE_SEED = 20260101


@dataclass(frozen=True)
class Chunk:
    """``table`` is the target-qualified name (``wallet.activities``)."""

    table: str
    kind: str | None
    lower: int | str | None = None
    upper: int | str | None = None

    def __post_init__(self) -> None:
        if self.kind is None:
            if self.lower is not None or self.upper is not None:
                raise ValueError(
                    f"{self.table}: bounds [{self.lower!r}, {self.upper!r}) given, but the table's key cannot be "
                    "split by range (composite key or unsupported type); plan it as one whole-table chunk"
                )
            return
        if self.kind not in KEY_KINDS:
            raise ValueError(f"{self.table}: key kind {self.kind!r} is not one of {', '.join(KEY_KINDS)}")
        lower, upper = (_normalise(self.table, self.kind, b) for b in (self.lower, self.upper))
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        if lower is not None and upper is not None and not _sort_key(self.kind, lower) < _sort_key(self.kind, upper):
            raise ValueError(f"{self.table}: chunk lower bound {lower!r} must be below upper bound {upper!r}")

    @property
    def label(self) -> str:
        """``wallet.activities [1200000, 1400000)``; usable as an Airflow map index."""
        if self.lower is None and self.upper is None:
            return f"{self.table} (all)"
        low = "(-inf" if self.lower is None else f"[{self.lower}"
        high = "+inf)" if self.upper is None else f"{self.upper})"
        return f"{self.table} {low}, {high}"

    @property
    def chunk_id(self) -> str:
        """A stable identity for the chunk ledger."""
        return json.dumps([self.table, self.lower, self.upper], ensure_ascii=False, separators=(",", ":"))

    def to_dict(self) -> dict:
        return {"table": self.table, "kind": self.kind, "lower": self.lower, "upper": self.upper, "label": self.label}

    @classmethod
    def from_dict(cls, value: Mapping) -> Chunk:
        unknown = set(value) - {"table", "kind", "lower", "upper", "label"}
        if unknown or "table" not in value or "kind" not in value:
            raise ValueError(f"not a chunk: {dict(value)!r} (needs table, kind, lower, upper)")
        return cls(value["table"], value["kind"], value.get("lower"), value.get("upper"))

    @classmethod
    def of(cls, value: Chunk | Mapping) -> Chunk:
        return value if isinstance(value, Chunk) else cls.from_dict(value)

    def key_predicate(self, key: str, alias: str | None = None) -> sql.Composable:
        """``key >= %(lower)s AND key < %(upper)s`` (bind ``params``), or TRUE for a whole-table chunk."""
        column = sql.Identifier(alias, key) if alias else sql.Identifier(key)
        if self.kind == "text":
            column = sql.SQL('{} COLLATE "C"').format(column)
        parts = []
        if self.lower is not None:
            parts.append(sql.SQL("{} >= %(lower)s").format(column))
        if self.upper is not None:
            parts.append(sql.SQL("{} < %(upper)s").format(column))
        return sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")

    @property
    def params(self) -> dict:
        """Bind values for ``key_predicate``."""
        return {"lower": self.lower, "upper": self.upper}


def _normalise(table: str, kind: str, bound):
    if bound is None:
        return None
    if kind == "integer":
        if isinstance(bound, bool) or not isinstance(bound, int):
            raise ValueError(f"{table}: integer key bound must be a whole number, found {bound!r}")
        return bound
    if kind == "uuid":
        try:
            return str(uuid.UUID(str(bound)))
        except ValueError:
            raise ValueError(f"{table}: uuid key bound {bound!r} is not a uuid") from None
    if not isinstance(bound, str):
        raise ValueError(f"{table}: text key bound must be a string, found {bound!r}")
    return bound


def _sort_key(kind: str, bound):
    # PostgreSQL orders uuids bytewise, and text COLLATE "C" by UTF-8 bytes (= code points).
    return uuid.UUID(bound).bytes if kind == "uuid" else bound


def chunks_from_boundaries(table: str, kind: str | None, boundaries) -> list[Chunk]:
    """Consecutive chunks cut at ``boundaries``: open below first, open above last."""
    if kind is None:
        return [Chunk(table, None)]
    cuts = sorted({_normalise(table, kind, b) for b in boundaries if b is not None}, key=lambda b: _sort_key(kind, b))
    edges = [None, *cuts, None]
    return [Chunk(table, kind, low, high) for low, high in zip(edges, edges[1:], strict=False)]


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


def key_kind(conn: psycopg.Connection, table: Table) -> str | None:
    """The chunkable kind of the table's key in the source, or None (one whole-table chunk)."""
    if len(table.key) != 1:
        return None
    row = conn.execute(
        "SELECT format_type(a.atttypid, NULL) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND NOT a.attisdropped",
        (sql.Identifier(*table.source_ident).as_string(conn), table.key[0]),
    ).fetchone()
    if row is None:
        raise ValueError(f"{table.qualified}: key column {table.key[0]!r} not found in source table {'.'.join(table.source_ident)}")
    return TYPE_KINDS.get(row[0])


def table_size(conn: psycopg.Connection, table: Table) -> tuple[int, int]:
    """(rows, bytes) of the source table: reltuples when large, an exact count when small or unanalysed."""
    ident = sql.Identifier(*table.source_ident)
    row = conn.execute(
        "SELECT c.reltuples::bigint, pg_total_relation_size(c.oid) FROM pg_class c WHERE c.oid = to_regclass(%s)",
        (ident.as_string(conn),),
    ).fetchone()
    if row is None:
        raise ValueError(f"{table.qualified}: source table {'.'.join(table.source_ident)} does not exist")
    rows, size = row
    if rows < EXACT_COUNT_ROWS:
        rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()[0]
    return rows, size


def plan_chunks(
    conn: psycopg.Connection,
    table: Table,
    *,
    target_rows: int | None = None,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    max_chunks: int = DEFAULT_MAX_CHUNKS_TOTAL,
    size: tuple[int, int] | None = None,
) -> list[Chunk]:
    """Balanced chunks of one source table (``conn`` is a connection to its source database).

    ``table.chunk_rows`` from the manifest wins over ``target_rows``; ``size``
    may pass (rows, bytes) already measured.
    """
    kind = key_kind(conn, table)
    if kind is None:
        log.info("%s: key %s is composite or not integer/uuid/text: one whole-table chunk", table.qualified, list(table.key))
        return [Chunk(table.qualified, None)]
    rows, total_bytes = size or table_size(conn, table)
    count = min(max_chunks, wanted_chunks(rows, total_bytes, target_rows=table.chunk_rows or target_rows, target_bytes=target_bytes))
    if count <= 1:
        return [Chunk(table.qualified, kind)]
    return chunks_from_boundaries(table.qualified, kind, _percentiles(conn, table, kind, rows, percentile_fractions(count)))


def _percentiles(conn: psycopg.Connection, table: Table, kind: str, rows: int, fractions: list[float]) -> list:
    key = sql.Identifier(table.key[0])
    order = sql.SQL('{} COLLATE "C"').format(key) if kind == "text" else key
    source = sql.Identifier(*table.source_ident)
    if rows > EXACT_PERCENTILE_ROWS:
        # Block sampling reads only the sampled pages; a fixed seed keeps the plan stable on re-runs.
        percent = min(100.0, 100.0 * max(SAMPLE_ROWS, 20 * len(fractions)) / rows)
        source = sql.SQL("{} TABLESAMPLE SYSTEM (%(percent)s) REPEATABLE (%(seed)s)").format(source)
    else:
        percent = 100.0
    statement = sql.SQL("SELECT percentile_disc(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY {}) FROM {}").format(order, source)
    found = conn.execute(statement, {"fractions": fractions, "percent": percent, "seed": SAMPLE_SEED}).fetchone()[0] or []
    return [str(v) if isinstance(v, uuid.UUID) else v for v in found]


def plan_all(
    manifest: Manifest,
    source_endpoints: Mapping,
    *,
    target_rows: int | None = None,
    target_bytes: int = DEFAULT_TARGET_BYTES,
    max_chunks_total: int = DEFAULT_MAX_CHUNKS_TOTAL,
) -> list[Chunk]:
    """Chunks of every manifest table (parents first), at most ``max_chunks_total`` in all.

    ``source_endpoints`` maps service name to its source ``Endpoint``.
    """
    sizes: dict[str, tuple[int, int]] = {}
    plans: list[Chunk] = []
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
