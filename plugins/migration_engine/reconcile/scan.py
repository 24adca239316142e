"""Read-only queries on one side: table shape, bucket boundaries, bucket
summaries, key/hash streams and point re-reads. Every hash is computed in a
transaction whose print settings are pinned, so both servers hash alike."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql

from migration_engine.canonical import hash_sum, pin_output_settings, row_hash
from migration_engine.reconcile.diff import BucketSummary
from migration_engine.segment import KEY_KINDS_BY_TYPE, KeyKind, TableSegment, dedupe_sorted, sample_percentiles

TARGET_ROWS_PER_BUCKET = 200
MAX_BUCKETS = 20_000
SAMPLES_PER_BUCKET = 5
STREAM_BATCH_ROWS = 5_000


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


def key_kind_for(qualified: str, column: str, type_name: str) -> KeyKind:
    try:
        return KEY_KINDS_BY_TYPE[type_name]
    except KeyError:
        supported = ", ".join(sorted(KEY_KINDS_BY_TYPE))
        raise ReconcileError(
            f"{qualified}: key column {column!r} has type {type_name!r}; reconciliation supports keys of type {supported}"
        ) from None


def table_columns(conn: psycopg.Connection, ident: tuple[str, str]) -> dict[str, str]:
    """Column name -> type name, in column order; empty if the table does not exist."""
    rows = conn.execute(
        "SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text))"
        " AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
        ident,
    ).fetchall()
    return dict(rows)


def describe(source: psycopg.Connection, target: psycopg.Connection, qualified: str,
             source_ident: tuple[str, str], target_ident: tuple[str, str], key: tuple[str, ...]) -> TableShape:
    """The table's shape from the source catalog, checked against the target's columns."""
    if len(key) != 1:
        raise ReconcileError(f"{qualified}: reconciliation needs a single-column key, the manifest gives {list(key)}")
    columns = table_columns(source, source_ident)
    if not columns:
        raise ReconcileError(f"{qualified}: table {'.'.join(source_ident)} does not exist on the source")
    target_columns = table_columns(target, target_ident)
    if not target_columns:
        raise ReconcileError(f"{qualified}: table {'.'.join(target_ident)} does not exist on the target")
    missing = [c for c in columns if c not in target_columns]
    if missing:
        raise ReconcileError(f"{qualified}: the target lacks source columns {missing}; run the schema baseline first")
    if key[0] not in columns:
        raise ReconcileError(f"{qualified}: key column {key[0]!r} is not a column of the source table")
    return TableShape(qualified, tuple(columns), key[0], key_kind_for(qualified, key[0], columns[key[0]]))


def estimated_rows(conn: psycopg.Connection, ident: tuple[str, str]) -> int | None:
    """The planner's row estimate (None when the table was never analysed)."""
    row = conn.execute(
        "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(format('%%I.%%I', %s::text, %s::text))", ident
    ).fetchone()
    return None if row is None or row[0] < 0 else row[0]


def sample_boundaries(conn: psycopg.Connection, shape: TableShape, ident: tuple[str, str], *, seed: int = 0) -> list:
    """Bucket boundaries from the data's own distribution: percentiles of a row sample,
    computed once per run on the source and given to both sides, so both group rows
    into identical buckets."""
    rows = estimated_rows(conn, ident)
    if rows is None:
        percent, buckets = 100.0, MAX_BUCKETS
    else:
        buckets = max(1, min(MAX_BUCKETS, rows // TARGET_ROWS_PER_BUCKET))
        percent = min(100.0, 100.0 * buckets * SAMPLES_PER_BUCKET / max(rows, 1))
    if buckets <= 1 and rows is not None:
        return []
    fractions = [i / buckets for i in range(1, buckets)]
    return dedupe_sorted(sample_percentiles(conn, ident, shape.key, shape.key_kind, fractions, percent=percent, seed=seed))


def bucket_summaries(conn: psycopg.Connection, shape: TableShape, ident: tuple[str, str], boundaries: list) -> dict[int, BucketSummary]:
    """One scan: row count and hash sum per bucket."""
    query = sql.SQL(
        "SELECT width_bucket({key}, {bounds}), count(*), {digest} FROM {table} AS t GROUP BY 1"
    ).format(key=shape.bucket_key(), bounds=shape.key_array("bounds"), digest=hash_sum(shape.columns),
             table=sql.Identifier(*ident))
    with conn.transaction():
        pin_output_settings(conn)
        rows = conn.execute(query, {"bounds": boundaries}).fetchall()
    return {bucket: BucketSummary(count, int(digest)) for bucket, count, digest in rows}


def stream_key_hashes(conn: psycopg.Connection, shape: TableShape, ident: tuple[str, str], boundaries: list,
                      buckets: list[int]) -> Iterator[tuple]:
    """(key, row_hash) of every row in the given buckets, key-ordered, fetched in batches.

    Integer and uuid keys are read by index range scans: one query for the
    buckets between two boundaries (a lateral join over the ranges), one each
    for the open-ended first and last buckets, chained in key order. Text keys
    compare in byte order, which the column's index does not follow, so they
    are read with one filtered scan. Must be iterated inside ``conn.transaction()``
    after ``pin_output_settings``.
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
                           {"bounds": boundaries, "buckets": buckets}, "reconcile_text")
        return
    ranges = shape.whole.buckets(boundaries, buckets)
    bounded = [r for r in ranges if r.lower is not None and r.upper is not None]
    if ranges[0].lower is None:
        yield from _stream_range(conn, base, ranges[0], "reconcile_low")
    if bounded:
        query = sql.SQL(
            "SELECT x.* FROM unnest({lowers}, {uppers}) AS r(lower_key, upper_key) CROSS JOIN LATERAL"
            " (SELECT {key}, {hash} FROM {table} AS t WHERE {column} >= r.lower_key AND {column} < r.upper_key) AS x ORDER BY 1"
        ).format(lowers=shape.key_array("lowers"), uppers=shape.key_array("uppers"), column=sql.Identifier("t", shape.key), **base)
        yield from _stream(conn, query, {"lowers": [r.lower for r in bounded], "uppers": [r.upper for r in bounded]}, "reconcile_mid")
    if ranges[-1].upper is None and ranges[-1].lower is not None:
        yield from _stream_range(conn, base, ranges[-1], "reconcile_high")


def _stream_range(conn: psycopg.Connection, base: dict, segment: TableSegment, name: str) -> Iterator[tuple]:
    query = sql.SQL("SELECT {key}, {hash} FROM {table} AS t WHERE {condition} ORDER BY 1").format(
        condition=segment.predicate(alias="t"), **base)
    yield from _stream(conn, query, segment.params, name)


def _stream(conn: psycopg.Connection, query: sql.Composable, params: dict, name: str) -> Iterator[tuple]:
    with conn.cursor(name=name) as cursor:
        cursor.itersize = STREAM_BATCH_ROWS
        cursor.execute(query, params)
        yield from cursor


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
