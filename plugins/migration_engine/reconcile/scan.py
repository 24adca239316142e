"""Read-only queries on one side: table shape, bucket boundaries, bucket
summaries, key/hash streams and point re-reads. Every hash is computed in a
transaction whose print settings are pinned, so both servers hash alike."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql

from migration_engine.canonical import hash_sum, pin_output_settings, row_hash
from migration_engine.catalog import TableDescription, describe_table, heap_blocks, size_estimate
from migration_engine.pacing import ScanPacer
from migration_engine.reconcile.diff import BucketSummary
from migration_engine.segment import KEY_KINDS_BY_TYPE, KeyKind, TableSegment, dedupe_sorted, sample_percentiles

TARGET_ROWS_PER_BUCKET = 200
MAX_BUCKETS = 20_000
SAMPLES_PER_BUCKET = 5
STREAM_BATCH_ROWS = 5_000
# A paced scan's slice: 2 MB of heap, milliseconds of hashing. An app's write that meets a slice shares the
# server with it for as long as the slice runs, so a short slice delays it little; a slice of a fraction of a
# second holds every write it meets for that long.
SLICE_BLOCKS = 256


class ReconcileError(ValueError):
    pass


@dataclass(frozen=True)
class TableShape:
    """What reconciliation needs to know of a table: its columns (source order) and key."""

    qualified: str
    columns: tuple[str, ...]
    key: str
    key_kind: KeyKind

    def __post_init__(self):
        if self.key not in self.columns:
            raise ReconcileError(f"{self.qualified}: key column {self.key!r} is not among its columns {list(self.columns)}")

    @property
    def value_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c != self.key)

    @property
    def whole(self) -> TableSegment:
        return TableSegment(self.qualified, self.key, self.key_kind)

    def ordered_key(self, alias: str = "t") -> sql.Composable:
        return self.key_kind.ordered(sql.Identifier(alias, self.key))

    def bucket_key(self, alias: str = "t") -> sql.Composable:
        return self.key_kind.bucketed(sql.Identifier(alias, self.key))

    def key_array(self, placeholder: str) -> sql.Composable:
        return self.key_kind.array(placeholder)


def describe(source: psycopg.Connection, target: psycopg.Connection, qualified: str,
             source_ident: tuple[str, str], target_ident: tuple[str, str], key: tuple[str, ...]) -> TableShape:
    """The table's shape from the source catalog, checked against the target's columns."""
    return shape_of(qualified, describe_table(source, source_ident, key), describe_table(target, target_ident), key,
                    source_name=".".join(source_ident), target_name=".".join(target_ident))


def shape_of(qualified: str, source: TableDescription | None, target: TableDescription | None, key: tuple[str, ...],
             *, source_name: str, target_name: str) -> TableShape:
    """What reconciliation needs of the table, or a ReconcileError naming why it cannot reconcile it."""
    if len(key) != 1:
        raise ReconcileError(f"{qualified}: reconciliation needs a single-column key, the manifest gives {list(key)}")
    if source is None:
        raise ReconcileError(f"{qualified}: table {source_name} does not exist on the source")
    if target is None:
        raise ReconcileError(f"{qualified}: table {target_name} does not exist on the target")
    missing = [c for c in source.column_names if c not in target.column_names]
    if missing:
        raise ReconcileError(f"{qualified}: the target lacks source columns {missing}; run the schema baseline first")
    key_column = source.column(key[0])
    if key_column is None:
        raise ReconcileError(f"{qualified}: key column {key[0]!r} is not a column of the source table")
    if source.key_kind is None:
        supported = ", ".join(sorted(KEY_KINDS_BY_TYPE))
        raise ReconcileError(f"{qualified}: key column {key[0]!r} has type {key_column.type_name!r}; "
                             f"reconciliation supports keys of type {supported}")
    return TableShape(qualified, source.column_names, key[0], source.key_kind)


def sample_boundaries(conn: psycopg.Connection, shape: TableShape, ident: tuple[str, str], *, seed: int = 0) -> list:
    """Bucket boundaries from the data's own distribution: percentiles of a row sample,
    computed once per run on the source and given to both sides, so both group rows
    into identical buckets."""
    size = size_estimate(conn, ident)
    rows = size[0] if size else None
    if rows is None:
        percent, buckets = 100.0, MAX_BUCKETS
    else:
        buckets = max(1, min(MAX_BUCKETS, rows // TARGET_ROWS_PER_BUCKET))
        percent = min(100.0, 100.0 * buckets * SAMPLES_PER_BUCKET / max(rows, 1))
    if buckets <= 1 and rows is not None:
        return []
    fractions = [i / buckets for i in range(1, buckets)]
    return dedupe_sorted(sample_percentiles(conn, ident, shape.key, shape.key_kind, fractions, percent=percent, seed=seed))


def bucket_summaries(conn: psycopg.Connection, shape: TableShape, ident: tuple[str, str], boundaries: list,
                     pacer: ScanPacer | None = None) -> dict[int, BucketSummary]:
    """One scan: row count and hash sum per bucket.

    With a ``pacer`` the scan reads ``SLICE_BLOCKS`` of the heap at a time (TID range scans, in
    physical order like one sequential scan) and rests between slices as the pacer asks. The
    slices share one repeatable-read snapshot, so each visible row is counted once, and a
    bucket's count and hash sum add up across slices exactly."""
    query = sql.SQL(
        "SELECT width_bucket({key}, {bounds}), count(*), {digest} FROM {table} AS t {where} GROUP BY 1"
    )
    parts = {"key": shape.bucket_key(), "bounds": shape.key_array("bounds"), "digest": hash_sum(shape.columns),
             "table": sql.Identifier(*ident)}
    summaries: dict[int, BucketSummary] = {}
    with conn.transaction():
        if pacer is None:
            pin_output_settings(conn)
            rows = conn.execute(query.format(where=sql.SQL(""), **parts), {"bounds": boundaries}).fetchall()
            return {bucket: BucketSummary(count, int(digest)) for bucket, count, digest in rows}
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        pin_output_settings(conn)
        blocks = heap_blocks(conn, ident)
        to_end = query.format(where=sql.SQL("WHERE t.ctid >= %(first)s::tid"), **parts)
        bounded = query.format(where=sql.SQL("WHERE t.ctid >= %(first)s::tid AND t.ctid < %(end)s::tid"), **parts)
        for first in range(0, max(blocks, 1), SLICE_BLOCKS):
            end = first + SLICE_BLOCKS
            # The last slice reads to the end: a row past the size measured is not visible to this snapshot.
            slice_query = to_end if end >= blocks else bounded
            started = time.monotonic()
            for bucket, count, digest in conn.execute(slice_query, {"bounds": boundaries, "first": f"({first},0)",
                                                                    "end": f"({end},0)"}):
                had = summaries.get(bucket, BucketSummary(0, 0))
                summaries[bucket] = BucketSummary(had.rows + count, had.hash_sum + int(digest))
            pacer.rest_after(time.monotonic() - started)
    return summaries


def stream_key_hashes(conn: psycopg.Connection, shape: TableShape, ident: tuple[str, str], boundaries: list,
                      buckets: list[int], pacer: ScanPacer | None = None) -> Iterator[tuple]:
    """(key, row_hash) of every row in the given buckets, key-ordered, fetched in batches.

    Integer and uuid keys are read by index range scans: one query for the
    buckets between two boundaries (a lateral join over the ranges), one each
    for the open-ended first and last buckets, chained in key order. Text keys
    compare in byte order, which the column's index does not follow, so they
    are read with one filtered scan. Must be iterated inside ``conn.transaction()``
    after ``pin_output_settings``. With a ``pacer`` it rests after each batch as the pacer asks: after
    a catch-up, the buckets that differ can hold a good part of a table.
    """
    base = {"key": shape.ordered_key(), "hash": row_hash(shape.columns), "table": sql.Identifier(*ident)}
    if not buckets:
        return
    # A cursor is planned for its first 10% of rows by default, which favours walking the
    # whole key index over a sort of the few rows the ranges hold; we read every row.
    conn.execute("SELECT set_config('cursor_tuple_fraction', '1', true), set_config('jit', 'off', true)")
    if shape.key_kind is KeyKind.TEXT:
        query = sql.SQL("SELECT {key}, {hash} FROM {table} AS t WHERE width_bucket({bucket_key}, {bounds}) = ANY(%(buckets)s::int[]) ORDER BY 1")
        yield from _stream(conn, query.format(bucket_key=shape.bucket_key(), bounds=shape.key_array("bounds"), **base),
                           {"bounds": boundaries, "buckets": buckets}, "reconcile_text", pacer)
        return
    ranges = shape.whole.buckets(boundaries, buckets)
    bounded = [r for r in ranges if r.lower is not None and r.upper is not None]
    if ranges[0].lower is None:
        yield from _stream_range(conn, base, ranges[0], "reconcile_low", pacer)
    if bounded:
        query = sql.SQL(
            "SELECT x.* FROM unnest({lowers}, {uppers}) AS r(lower_key, upper_key) CROSS JOIN LATERAL"
            " (SELECT {key}, {hash} FROM {table} AS t WHERE {column} >= r.lower_key AND {column} < r.upper_key) AS x ORDER BY 1"
        ).format(lowers=shape.key_array("lowers"), uppers=shape.key_array("uppers"), column=sql.Identifier("t", shape.key), **base)
        yield from _stream(conn, query, {"lowers": [r.lower for r in bounded], "uppers": [r.upper for r in bounded]},
                           "reconcile_mid", pacer)
    if ranges[-1].upper is None and ranges[-1].lower is not None:
        yield from _stream_range(conn, base, ranges[-1], "reconcile_high", pacer)


def _stream_range(conn: psycopg.Connection, base: dict, segment: TableSegment, name: str,
                  pacer: ScanPacer | None) -> Iterator[tuple]:
    query = sql.SQL("SELECT {key}, {hash} FROM {table} AS t WHERE {condition} ORDER BY 1").format(
        condition=segment.predicate(alias="t"), **base)
    yield from _stream(conn, query, segment.params, name, pacer)


def _stream(conn: psycopg.Connection, query: sql.Composable, params: dict, name: str,
            pacer: ScanPacer | None) -> Iterator[tuple]:
    with conn.cursor(name=name) as cursor:
        cursor.execute(query, params)
        while True:
            # A server-side cursor does the work of a batch as it is fetched: that is the busy time a rest follows.
            started = time.monotonic()
            rows = cursor.fetchmany(STREAM_BATCH_ROWS)
            if pacer is not None:
                pacer.rest_after(time.monotonic() - started)
            if not rows:
                return
            yield from rows


def read_hashes(conn: psycopg.Connection, shape: TableShape, ident: tuple[str, str], keys: list) -> dict:
    """Current row hash of each key present (absent keys are left out)."""
    query = sql.SQL("SELECT {key}, {hash} FROM {table} AS t WHERE {column} = ANY({keys})").format(
        key=shape.ordered_key(), hash=row_hash(shape.columns), table=sql.Identifier(*ident),
        column=sql.Identifier("t", shape.key), keys=shape.key_array("keys"),
    )
    with conn.transaction():
        pin_output_settings(conn)
        return dict(conn.execute(query, {"keys": keys}).fetchall())


# A row version's full 64-bit xid from its 32-bit xmin: the epoch of the next xid, one less when
# xmin lies above the next xid's low half (it was assigned before the last wraparound). Frozen
# and bootstrap xids (below 3) precede every horizon.
_FULL_XMIN = sql.SQL(
    "CASE WHEN t.xmin::text::bigint < 3 THEN 0 ELSE ((n.next_xid >> 32) << 32) + t.xmin::text::bigint"
    " - CASE WHEN t.xmin::text::bigint > (n.next_xid & 4294967295) THEN 4294967296 ELSE 0 END END"
)


def current_horizon(conn: psycopg.Connection) -> int:
    """The xmin horizon now: every transaction below it has ended, so any row version written
    later carries an xid at or above it."""
    return conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").fetchone()[0]


def read_written_since(conn: psycopg.Connection, shape: TableShape, ident: tuple[str, str], keys: list,
                       horizon: int) -> dict:
    """For each key present: whether its current row version was written at or after ``horizon``.

    A version below it was committed before the horizon was taken; one at or above it may be
    newer, so it counts as written since (never wrongly as old)."""
    query = sql.SQL(
        "SELECT {key}, {full_xmin} >= %(horizon)s FROM {table} AS t,"
        " (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next_xid) AS n"
        " WHERE {column} = ANY({keys})"
    ).format(key=shape.ordered_key(), full_xmin=_FULL_XMIN, table=sql.Identifier(*ident),
             column=sql.Identifier("t", shape.key), keys=shape.key_array("keys"))
    return dict(conn.execute(query, {"keys": keys, "horizon": horizon}).fetchall())
