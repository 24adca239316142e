"""The key space of one table: its key column, how keys order, and key ranges.

Reconciliation compares two servers bucket by bucket, so both must order keys
the same way: integers and uuids order the same everywhere; text keys are
compared with ``COLLATE "C"`` (byte order, which is also Python's ``str``
order), whatever collation either database uses by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from psycopg import sql


class KeyKind(Enum):
    INTEGER = "integer"
    UUID = "uuid"
    TEXT = "text"


KEY_KINDS_BY_TYPE = {
    "int2": KeyKind.INTEGER,
    "int4": KeyKind.INTEGER,
    "int8": KeyKind.INTEGER,
    "uuid": KeyKind.UUID,
    "text": KeyKind.TEXT,
    "varchar": KeyKind.TEXT,
    "bpchar": KeyKind.TEXT,
}

# The SQL type a key array parameter is cast to, per kind (fixed text, never input).
ARRAY_CAST = {
    KeyKind.INTEGER: sql.SQL("bigint[]"),
    KeyKind.UUID: sql.SQL("uuid[]"),
    KeyKind.TEXT: sql.SQL("text[]"),
}


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

    def ordered_key(self, alias: str = "t") -> sql.Composable:
        """The key as compared and sorted: text keys in byte order, others natively."""
        column = sql.Identifier(alias, self.key)
        if self.key_kind is KeyKind.TEXT:
            return sql.SQL('({}::text COLLATE "C")').format(column)
        return column

    def bucket_key(self, alias: str = "t") -> sql.Composable:
        """The key as width_bucket sees it: the same type as the boundary array."""
        if self.key_kind is KeyKind.INTEGER:
            return sql.SQL("{}::bigint").format(sql.Identifier(alias, self.key))
        return self.ordered_key(alias)

    def key_array(self, placeholder: str) -> sql.Composable:
        return sql.SQL("{}::{}").format(sql.Placeholder(placeholder), ARRAY_CAST[self.key_kind])


def key_kind_for(qualified: str, column: str, type_name: str) -> KeyKind:
    try:
        return KEY_KINDS_BY_TYPE[type_name]
    except KeyError:
        supported = ", ".join(sorted(KEY_KINDS_BY_TYPE))
        raise ReconcileError(
            f"{qualified}: key column {column!r} has type {type_name!r}; reconciliation supports keys of type {supported}"
        ) from None


@dataclass(frozen=True)
class KeyRange:
    """Keys ``lower <= key < upper``; ``None`` leaves that end open."""

    lower: object = None
    upper: object = None

    def __post_init__(self):
        if self.lower is not None and self.upper is not None and not self.lower < self.upper:
            raise ReconcileError(f"a key range needs lower < upper, found [{self.lower!r}, {self.upper!r})")

    def condition(self, key: sql.Composable) -> tuple[sql.Composable, dict]:
        parts: list[sql.Composable] = []
        params: dict = {}
        if self.lower is not None:
            parts.append(sql.SQL("{} >= {}").format(key, sql.Placeholder("lower")))
            params["lower"] = self.lower
        if self.upper is not None:
            parts.append(sql.SQL("{} < {}").format(key, sql.Placeholder("upper")))
            params["upper"] = self.upper
        return (sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")), params


def ranges_for_buckets(boundaries: list, buckets: list[int]) -> list[KeyRange]:
    """Key ranges covering the given width_bucket numbers, adjacent buckets merged.

    With n boundaries, bucket 0 holds keys below the first, bucket i keys in
    [boundaries[i-1], boundaries[i]), bucket n keys from the last one up.
    """
    n = len(boundaries)
    ranges: list[KeyRange] = []
    run_start = previous = None
    for bucket in sorted(set(buckets)):
        if not 0 <= bucket <= n:
            raise ReconcileError(f"bucket {bucket} is outside 0..{n}")
        if previous is not None and bucket == previous + 1:
            previous = bucket
            continue
        if run_start is not None:
            ranges.append(_range(boundaries, run_start, previous))
        run_start = previous = bucket
    if run_start is not None:
        ranges.append(_range(boundaries, run_start, previous))
    return ranges


def _range(boundaries: list, first: int, last: int) -> KeyRange:
    lower = boundaries[first - 1] if first > 0 else None
    upper = boundaries[last] if last < len(boundaries) else None
    return KeyRange(lower, upper)


def dedupe_sorted(values: list) -> list:
    """Drop repeats from an ascending list (percentiles of a skewed sample repeat)."""
    out: list = []
    for value in values:
        if not out or out[-1] != value:
            out.append(value)
    return out
