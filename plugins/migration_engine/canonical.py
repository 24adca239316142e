"""The canonical text of a row, the same on any server whatever its settings.

Verification and reconciliation hash ``ROW(col, ...)::text`` over the source's
column list, in a transaction that first pins every setting that changes how
values print (TimeZone, DateStyle, IntervalStyle, extra_float_digits,
bytea_output). Two servers with identical data then produce identical text, even
when one runs at +05:30 with ``DateStyle=SQL, DMY`` and the other in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql

CANONICAL_SETTINGS = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "iso_8601",
    "extra_float_digits": "1",
    "bytea_output": "hex",
}


def pin_output_settings(conn: psycopg.Connection) -> None:
    """Pin the print settings for the current transaction only (safe behind a pooler)."""
    statement = sql.SQL("SELECT {}").format(
        sql.SQL(", ").join(
            sql.SQL("set_config({}, {}, true)").format(sql.Literal(name), sql.Literal(value))
            for name, value in CANONICAL_SETTINGS.items()
        )
    )
    conn.execute(statement)


def row_text(columns: Sequence[str], alias: str = "t") -> sql.Composed:
    """``ROW(t.a, t.b, ...)::text``: one string per row, NULLs and quoting included."""
    if not columns:
        raise ValueError("a row needs at least one column")
    return sql.SQL("ROW({})::text").format(sql.SQL(", ").join(sql.Identifier(alias, c) for c in columns))


def row_hash(columns: Sequence[str], alias: str = "t") -> sql.Composed:
    """A signed 64-bit hash of the row's canonical text, for the reconciliation engine.

    ``hashtextextended`` is PostgreSQL's own 64-bit hash, several times cheaper per
    row than md5 and the same on every server of the same byte order and on every
    major version (hash partitioning places rows with it, so it cannot change).
    A changed row keeps its hash with odds of 2^-64 (about 5e-20); it guards
    against accidental drift, not against someone forging collisions.
    ``COLLATE "C"`` keeps a nondeterministic collation from hashing equal-looking
    texts alike.
    """
    return sql.SQL('hashtextextended({} COLLATE "C", 0)').format(row_text(columns, alias))


def row_md5(columns: Sequence[str], alias: str = "t") -> sql.Composed:
    """A signed 64-bit hash from md5 of the row's canonical text: the exact verification's own hash,
    independent of the engine's, so a weakness of one cannot hide a difference from both."""
    return sql.SQL("('x' || left(md5({}), 16))::bit(64)::bigint").format(row_text(columns, alias))


def hash_sum(columns: Sequence[str], alias: str = "t", hash=row_hash) -> sql.Composed:
    """An order-independent digest of many rows: the exact numeric sum of their hashes."""
    return sql.SQL("coalesce(sum({}::numeric), 0)").format(hash(columns, alias))
