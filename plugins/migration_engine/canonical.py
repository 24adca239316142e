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
    """A signed 64-bit hash of the row's canonical text (first 16 hex digits of md5)."""
    return sql.SQL("('x' || left(md5({}), 16))::bit(64)::bigint").format(row_text(columns, alias))


def hash_sum(columns: Sequence[str], alias: str = "t") -> sql.Composed:
    """An order-independent digest of many rows: the exact numeric sum of their hashes."""
    return sql.SQL("coalesce(sum({}::numeric), 0)").format(row_hash(columns, alias))
