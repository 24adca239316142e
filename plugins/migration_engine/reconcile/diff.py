"""Pure comparison: bucket summaries to mismatched buckets, sorted key/hash
streams to drifted keys, and the confirmation decision. No database here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum


class DriftKind(Enum):
    MISSING_IN_TARGET = "missing_in_target"
    EXTRA_IN_TARGET = "extra_in_target"
    VALUES_DIFFER = "values_differ"


@dataclass(frozen=True)
class BucketSummary:
    rows: int
    hash_sum: int


@dataclass(frozen=True)
class Drift:
    """One drifted key: what each side's row hash was when it was found (None: absent)."""

    key: object
    source_hash: int | None
    target_hash: int | None

    @property
    def kind(self) -> DriftKind:
        return classify(self.source_hash, self.target_hash)


def classify(source_hash: int | None, target_hash: int | None) -> DriftKind:
    if source_hash is None and target_hash is None:
        raise ValueError("a key absent on both sides is not drift")
    if target_hash is None:
        return DriftKind.MISSING_IN_TARGET
    if source_hash is None:
        return DriftKind.EXTRA_IN_TARGET
    if source_hash == target_hash:
        raise ValueError("a key with equal hashes on both sides is not drift")
    return DriftKind.VALUES_DIFFER


def mismatched_buckets(source: dict[int, BucketSummary], target: dict[int, BucketSummary]) -> list[int]:
    """Buckets whose row count or hash sum differ (a bucket empty on one side counts)."""
    empty = BucketSummary(0, 0)
    return sorted(b for b in source.keys() | target.keys() if source.get(b, empty) != target.get(b, empty))


def diff_sorted(source: Iterable[tuple], target: Iterable[tuple]) -> Iterator[Drift]:
    """Merge two key-ordered streams of (key, row_hash) and yield every difference.

    Memory stays flat: one row of each side at a time. Both streams must be
    sorted ascending by the same ordering (Python's, which matches byte order
    for text, numeric order for integers and byte order for uuids).
    """
    src, tgt = iter(source), iter(target)
    s = next(src, None)
    t = next(tgt, None)
    previous = None
    while s is not None or t is not None:
        if s is not None and (t is None or s[0] < t[0]):
            key, drift = s[0], Drift(s[0], s[1], None)
            s = next(src, None)
        elif t is not None and (s is None or t[0] < s[0]):
            key, drift = t[0], Drift(t[0], None, t[1])
            t = next(tgt, None)
        else:
            key, drift = s[0], (Drift(s[0], s[1], t[1]) if s[1] != t[1] else None)
            s, t = next(src, None), next(tgt, None)
        if previous is not None and not previous < key:
            raise ValueError(f"key streams are not strictly ascending at {key!r}")
        previous = key
        if drift is not None:
            yield drift


class Outcome(Enum):
    REPAIR = "repair"
    IN_FLIGHT = "in_flight"
    SETTLED = "settled"
    # Confirmed drift the primary's history does not explain; reported, not repaired.
    UNEXPLAINED = "unexplained"


def confirm(found: Drift, primary_is_source: bool, source_now: int | None, target_now: int | None) -> Outcome:
    """Decide from a second read whether a drifted key may be repaired.

    Repaired only if the sides still differ AND the primary side has not
    changed since it was found; a primary that moved means a write is in
    flight, and copying it now could race the application.
    """
    if source_now == target_now:
        return Outcome.SETTLED
    primary_then, primary_now = (found.source_hash, source_now) if primary_is_source else (found.target_hash, target_now)
    if primary_then != primary_now:
        return Outcome.IN_FLIGHT
    return Outcome.REPAIR


def over_cap(drifted: int, cap: int) -> bool:
    """The repair cap: more drift than this means dual-write is broken, so repair nothing."""
    if cap < 0:
        raise ValueError(f"the repair cap must be 0 or more, found {cap}")
    return drifted > cap
