"""The pure parts of reconciliation: buckets, merge diff, confirmation, cap."""

from __future__ import annotations

import pytest

from migration_engine.catalog import Column, TableDescription
from migration_engine.reconcile.diff import (
    BucketSummary,
    Drift,
    DriftKind,
    Outcome,
    classify,
    confirm,
    diff_sorted,
    mismatched_buckets,
    over_cap,
)
from migration_engine.reconcile.scan import ReconcileError, TableShape, shape_of
from migration_engine.segment import KeyKind


def test_mismatched_buckets_compare_counts_and_sums_and_one_sided_buckets():
    source = {0: BucketSummary(10, 5), 1: BucketSummary(10, 7), 2: BucketSummary(3, 1), 4: BucketSummary(1, 9)}
    target = {0: BucketSummary(10, 5), 1: BucketSummary(10, 8), 2: BucketSummary(2, 1), 3: BucketSummary(1, 4)}
    assert mismatched_buckets(source, target) == [1, 2, 3, 4]
    assert mismatched_buckets(source, dict(source)) == []


def test_diff_sorted_finds_every_kind_in_one_pass():
    source = [(1, 11), (2, 22), (4, 44), (6, 66)]
    target = [(1, 11), (3, 33), (4, 45), (6, 66), (7, 77)]
    found = list(diff_sorted(source, target))
    assert [(d.key, d.kind) for d in found] == [
        (2, DriftKind.MISSING_IN_TARGET),
        (3, DriftKind.EXTRA_IN_TARGET),
        (4, DriftKind.VALUES_DIFFER),
        (7, DriftKind.EXTRA_IN_TARGET),
    ]
    assert found[2] == Drift(4, 44, 45)


def test_diff_sorted_orders_text_in_byte_order():
    # Byte order puts upper case before lower case and 'é' after 'z'.
    source = [("B", 1), ("a", 1), ("z", 1), ("é", 1)]
    target = [("B", 1), ("a", 2), ("é", 1)]
    assert [(d.key, d.kind) for d in diff_sorted(source, target)] == [
        ("a", DriftKind.VALUES_DIFFER), ("z", DriftKind.MISSING_IN_TARGET)]


def test_diff_sorted_rejects_unsorted_input():
    with pytest.raises(ValueError, match="not strictly ascending"):
        list(diff_sorted([(2, 1), (1, 1)], []))


def test_classify_rejects_non_drift():
    with pytest.raises(ValueError):
        classify(None, None)
    with pytest.raises(ValueError):
        classify(5, 5)


@pytest.mark.parametrize(
    ("found", "primary_is_source", "now", "expected"),
    [
        (Drift(1, 10, 20), True, (10, 20), Outcome.REPAIR),
        (Drift(1, 10, 20), True, (10, 10), Outcome.SETTLED),
        (Drift(1, 10, 20), True, (11, 20), Outcome.IN_FLIGHT),
        (Drift(1, 10, None), True, (None, None), Outcome.SETTLED),
        (Drift(1, 10, None), True, (10, 30), Outcome.REPAIR),  # secondary moved, primary did not
        (Drift(1, None, 20), True, (30, 20), Outcome.IN_FLIGHT),  # inserted on the primary meanwhile
        (Drift(1, 10, 20), False, (10, 21), Outcome.IN_FLIGHT),  # after cutover the target is primary
        (Drift(1, 10, 20), False, (12, 20), Outcome.REPAIR),
    ],
)
def test_confirm(found, primary_is_source, now, expected):
    assert confirm(found, primary_is_source, *now) is expected


def test_cap():
    assert not over_cap(10, 10)
    assert over_cap(11, 10)
    assert over_cap(1, 0)
    with pytest.raises(ValueError):
        over_cap(1, -1)


def described(key_kind: KeyKind | None, **types: str) -> TableDescription:
    columns = tuple(Column(name, type_name, type_name, -1, True, None, "", "", False, (), False, None)
                    for name, type_name in types.items())
    return TableDescription(columns, key_kind)


def shape(source: TableDescription | None, target: TableDescription | None, key: tuple[str, ...] = ("id",)) -> TableShape:
    return shape_of("a.b", source, target, key, source_name="public.b", target_name="a.b")


def test_table_shape_takes_the_source_columns_and_key_kind():
    source = described(KeyKind.UUID, id="uuid", x="text")
    assert shape(source, described(None, id="uuid", x="text", extra="int4")) == \
        TableShape("a.b", ("id", "x"), "id", KeyKind.UUID)
    assert shape(source, source).value_columns == ("x",)
    with pytest.raises(ReconcileError, match="not among its columns"):
        TableShape("a.b", ("x",), "id", KeyKind.INTEGER)


@pytest.mark.parametrize(
    ("source", "target", "key", "error"),
    [
        (described(KeyKind.INTEGER, id="int4"), described(None, id="int4"), ("id", "x"), r"a\.b: reconciliation needs a single-column key"),
        (None, described(None, id="int4"), ("id",), r"a\.b: table public\.b does not exist on the source"),
        (described(KeyKind.INTEGER, id="int4"), None, ("id",), r"a\.b: table a\.b does not exist on the target"),
        (described(KeyKind.INTEGER, id="int4", x="text"), described(None, id="int4"), ("id",), r"the target lacks source columns \['x'\]"),
        (described(None, x="int4"), described(None, x="int4"), ("id",), r"key column 'id' is not a column of the source table"),
        (described(None, id="numeric"), described(None, id="numeric"), ("id",), r"a\.b: key column 'id' has type 'numeric'"),
    ],
)
def test_table_shape_refuses_what_reconciliation_cannot_compare(source, target, key, error):
    with pytest.raises(ReconcileError, match=error):
        shape(source, target, key)
