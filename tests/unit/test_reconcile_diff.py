"""The pure parts of reconciliation: buckets, merge diff, confirmation, cap."""

from __future__ import annotations

import pytest

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
from migration_engine.reconcile.scan import ReconcileError, TableShape, key_kind_for
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


def test_table_shape_and_key_kinds():
    assert key_kind_for("a.b", "id", "int4") is KeyKind.INTEGER
    assert key_kind_for("a.b", "id", "varchar") is KeyKind.TEXT
    with pytest.raises(ReconcileError, match=r"a\.b: key column 'id' has type 'numeric'"):
        key_kind_for("a.b", "id", "numeric")
    with pytest.raises(ReconcileError, match="not among its columns"):
        TableShape("a.b", ("x",), "id", KeyKind.INTEGER)
    assert TableShape("a.b", ("id", "x"), "id", KeyKind.UUID).value_columns == ("x",)
