"""The backfill's chunk planning maths, without a database."""

from __future__ import annotations

import pytest

from migration_engine.chunks import percentile_fractions, share_budget, wanted_chunks


def test_wanted_chunks_follows_rows_or_bytes():
    assert wanted_chunks(1_000_000, 10**9, target_rows=200_000, target_bytes=1) == 5
    assert wanted_chunks(1_000_000, 10**9, target_rows=None, target_bytes=256 * 2**20) == 4
    assert wanted_chunks(0, 0, target_rows=10, target_bytes=10) == 1


def test_budget_is_shared_proportionally_and_never_exceeded():
    budget = share_budget({"a": 3000, "b": 1000, "c": 1, "d": 1}, 1000)
    assert sum(budget.values()) <= 1000
    assert budget["c"] == budget["d"] == 1
    assert 2.9 < budget["a"] / budget["b"] < 3.1
    assert share_budget({"a": 5, "b": 2}, 1000) == {"a": 5, "b": 2}
    with pytest.raises(ValueError, match="below the number of tables"):
        share_budget({"a": 5, "b": 2, "c": 1}, 2)


def test_percentile_fractions_cut_equal_slices():
    assert percentile_fractions(4) == [0.25, 0.5, 0.75]
    assert percentile_fractions(1) == []
