"""Table segments: one key range of one table, the unit backfill copies and reconciliation scans.

A segment is ``[lower, upper)`` on the table's single key column, ``None`` meaning
an open end. A table's first segment is open below and its last open above, so
rows inserted later beyond today's max key are still covered.

Key kinds: ``integer`` (smallint/integer/bigint), ``uuid`` and ``text``
(text/varchar/char). Text keys are always compared as ``text COLLATE "C"`` (byte
order, which for UTF-8 is code-point order, the same order Python uses for
``str``), so a range means the same rows on source and target whatever their
collations; a ``char(n)`` key loses its trailing blanks in the cast, as
PostgreSQL's own ``char`` comparison ignores them. A table whose key is composite
or of another type cannot be ranged: its only segment is the whole table
(``kind`` None), and a bounded one is an error.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

import psycopg
from psycopg import sql


class KeyKind(Enum):
    INTEGER = "integer"
    UUID = "uuid"
    TEXT = "text"

    def ordered(self, column: sql.Composable) -> sql.Composable:
        """The key as compared and sorted: text in byte order, others natively (so an index serves them)."""
        if self is KeyKind.TEXT:
            return sql.SQL('({}::text COLLATE "C")').format(column)
        return column

    def bucketed(self, column: sql.Composable) -> sql.Composable:
        """The key as width_bucket and percentiles see it: the same type as ``array``."""
        if self is KeyKind.INTEGER:
            return sql.SQL("{}::bigint").format(column)
        return self.ordered(column)

    def array(self, placeholder: str) -> sql.Composable:
        """A parameter holding a list of keys, cast to this kind's array type."""
        return sql.SQL("{}::{}").format(sql.Placeholder(placeholder), sql.SQL(_ARRAY_TYPES[self]))


_ARRAY_TYPES = {KeyKind.INTEGER: "bigint[]", KeyKind.UUID: "uuid[]", KeyKind.TEXT: "text[]"}

# By pg_type.typname: the one map of which key types can be ranged.
KEY_KINDS_BY_TYPE = {
    "int2": KeyKind.INTEGER,
    "int4": KeyKind.INTEGER,
    "int8": KeyKind.INTEGER,
    "uuid": KeyKind.UUID,
    "text": KeyKind.TEXT,
    "varchar": KeyKind.TEXT,
    "bpchar": KeyKind.TEXT,
}


@dataclass(frozen=True)
class TableSegment:
    """``table`` is the target-qualified name (``wallet.activities``); ``key`` the single key column
    the bounds apply to, None (with ``kind`` None) when the table's key cannot be ranged."""

    table: str
    key: str | None
    kind: KeyKind | None
    lower: int | str | None = None
    upper: int | str | None = None

    def __post_init__(self) -> None:
        if self.kind is None:
            if self.lower is not None or self.upper is not None:
                raise ValueError(
                    f"{self.table}: bounds [{self.lower!r}, {self.upper!r}) given, but the table's key cannot be "
                    "split by range (composite key or unsupported type); plan it as one whole-table segment"
                )
            if self.key is not None:
                raise ValueError(f"{self.table}: key column {self.key!r} given without a key kind")
            return
        if not isinstance(self.kind, KeyKind):
            try:
                object.__setattr__(self, "kind", KeyKind(self.kind))
            except ValueError:
                kinds = ", ".join(k.value for k in KeyKind)
                raise ValueError(f"{self.table}: key kind {self.kind!r} is not one of {kinds}") from None
        if not self.key:
            raise ValueError(f"{self.table}: {self.kind.value} key bounds need the key column they apply to")
        lower, upper = (_normalise(self.table, self.kind, b) for b in (self.lower, self.upper))
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        if lower is not None and upper is not None and not _sort_key(self.kind, lower) < _sort_key(self.kind, upper):
            raise ValueError(f"{self.table}: segment lower bound {lower!r} must be below upper bound {upper!r}")

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
        """A stable identity for the backfill's chunk ledger."""
        return json.dumps([self.table, self.lower, self.upper], ensure_ascii=False, separators=(",", ":"))

    def to_dict(self) -> dict:
        return {"table": self.table, "key": self.key, "kind": self.kind and self.kind.value,
                "lower": self.lower, "upper": self.upper, "label": self.label}

    @classmethod
    def from_dict(cls, value: Mapping) -> TableSegment:
        unknown = set(value) - {"table", "key", "kind", "lower", "upper", "label"}
        if unknown or not {"table", "key", "kind"} <= set(value):
            raise ValueError(f"not a table segment: {dict(value)!r} (needs table, key, kind, lower, upper)")
        return cls(value["table"], value["key"], value["kind"], value.get("lower"), value.get("upper"))

    @classmethod
    def of(cls, value: TableSegment | Mapping) -> TableSegment:
        return value if isinstance(value, TableSegment) else cls.from_dict(value)

    def predicate(self, alias: str | None = None) -> sql.Composable:
        """``key >= %(lower)s AND key < %(upper)s`` (bind ``params``), or TRUE for a whole table."""
        if self.kind is None:
            return sql.SQL("TRUE")
        column = self.kind.ordered(sql.Identifier(alias, self.key) if alias else sql.Identifier(self.key))
        parts = []
        if self.lower is not None:
            parts.append(sql.SQL("{} >= %(lower)s").format(column))
        if self.upper is not None:
            parts.append(sql.SQL("{} < %(upper)s").format(column))
        return sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")

    @property
    def params(self) -> dict:
        """Bind values for ``predicate``."""
        return {"lower": self.lower, "upper": self.upper}

    def split(self, cuts: Iterable) -> list[TableSegment]:
        """Consecutive segments covering this one, cut at each of ``cuts`` inside it (repeats and order do
        not matter). A segment whose key cannot be ranged stays whole."""
        if self.kind is None:
            return [self]
        inside = {c for c in (_normalise(self.table, self.kind, b) for b in cuts if b is not None) if self._holds(c)}
        edges = [self.lower, *sorted(inside, key=lambda b: _sort_key(self.kind, b)), self.upper]
        return [self._between(low, high) for low, high in zip(edges, edges[1:], strict=False)]

    def buckets(self, boundaries: list, numbers: Iterable[int]) -> list[TableSegment]:
        """The segments of the given width_bucket ``numbers`` over ascending ``boundaries``, adjacent ones merged.

        With n boundaries, bucket 0 holds keys below the first, bucket i keys in
        [boundaries[i-1], boundaries[i]), bucket n keys from the last one up.
        """
        n = len(boundaries)
        runs: list[list[int]] = []
        for number in sorted(set(numbers)):
            if not 0 <= number <= n:
                raise ValueError(f"{self.table}: bucket {number} is outside 0..{n}")
            if runs and number == runs[-1][1] + 1:
                runs[-1][1] = number
            else:
                runs.append([number, number])
        return [self._between(boundaries[first - 1] if first > 0 else None, boundaries[last] if last < n else None)
                for first, last in runs]

    def _holds(self, bound) -> bool:
        key = _sort_key(self.kind, bound)
        return ((self.lower is None or _sort_key(self.kind, self.lower) < key)
                and (self.upper is None or key < _sort_key(self.kind, self.upper)))

    def _between(self, lower, upper) -> TableSegment:
        return TableSegment(self.table, self.key, self.kind, lower, upper)


def _normalise(table: str, kind: KeyKind, bound):
    if bound is None:
        return None
    if kind is KeyKind.INTEGER:
        if isinstance(bound, bool) or not isinstance(bound, int):
            raise ValueError(f"{table}: integer key bound must be a whole number, found {bound!r}")
        return bound
    if kind is KeyKind.UUID:
        try:
            return str(uuid.UUID(str(bound)))
        except ValueError:
            raise ValueError(f"{table}: uuid key bound {bound!r} is not a uuid") from None
    if not isinstance(bound, str):
        raise ValueError(f"{table}: text key bound must be a string, found {bound!r}")
    return bound


def _sort_key(kind: KeyKind, bound):
    # PostgreSQL orders uuids bytewise, and text COLLATE "C" by UTF-8 bytes (= code points).
    return uuid.UUID(bound).bytes if kind is KeyKind.UUID else bound


def dedupe_sorted(values: list) -> list:
    """Drop repeats from an ascending list (percentiles of a skewed sample repeat)."""
    out: list = []
    for value in values:
        if not out or out[-1] != value:
            out.append(value)
    return out


def sample_percentiles(conn: psycopg.Connection, ident: tuple[str, str], key: str, kind: KeyKind,
                       fractions: list[float], *, percent: float, seed: int) -> list:
    """The key's values at ``fractions`` of a row sample of ``percent`` (100: every row), ascending.

    Rows, not pages (BERNOULLI, not SYSTEM): a page holds a run of consecutive
    serial keys, so a page sample clusters and leaves some segments far wider than
    others. A fixed ``seed`` gives the same cuts on a re-run.
    """
    query = sql.SQL(
        "SELECT percentile_disc(%(fractions)s::float8[]) WITHIN GROUP (ORDER BY {key})"
        " FROM {table} AS t TABLESAMPLE BERNOULLI (%(percent)s) REPEATABLE (%(seed)s)"
    ).format(key=kind.bucketed(sql.Identifier("t", key)), table=sql.Identifier(*ident))
    with conn.transaction():
        values = conn.execute(query, {"fractions": fractions, "percent": percent, "seed": seed}).fetchone()[0]
    return [v for v in values or [] if v is not None]
