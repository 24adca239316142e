"""Chunk values and the planning maths, without a database."""

from __future__ import annotations

import pytest

from migration_engine.chunks import Chunk, chunks_from_boundaries, percentile_fractions, share_budget, wanted_chunks


def test_label_shows_bounds_and_open_ends():
    assert Chunk("wallet.activities", "integer", 1200000, 1400000).label == "wallet.activities [1200000, 1400000)"
    assert Chunk("wallet.activities", "integer", None, 5).label == "wallet.activities (-inf, 5)"
    assert Chunk("wallet.activities", "integer", 5, None).label == "wallet.activities [5, +inf)"
    assert Chunk("wallet.activities", "integer").label == "wallet.activities (all)"


@pytest.mark.parametrize(
    ("kind", "lower", "upper"),
    [
        ("integer", 10, 10),
        ("integer", 11, 10),
        ("uuid", "ffffffff-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000001"),
        ("text", "b", "a"),
        ("text", "é", "z"),  # code-point order: é (U+00E9) sorts after z
    ],
)
def test_lower_must_be_below_upper(kind, lower, upper):
    with pytest.raises(ValueError, match=r"wallet\.t: chunk lower bound .* must be below upper bound"):
        Chunk("wallet.t", kind, lower, upper)


def test_bounds_must_fit_the_key_kind():
    with pytest.raises(ValueError, match=r"wallet\.t: integer key bound must be a whole number, found '5'"):
        Chunk("wallet.t", "integer", "5", None)
    with pytest.raises(ValueError, match=r"wallet\.t: uuid key bound 'nope' is not a uuid"):
        Chunk("wallet.t", "uuid", "nope", None)
    with pytest.raises(ValueError, match=r"key kind 'float'"):
        Chunk("wallet.t", "float", 1.0, 2.0)


def test_composite_key_tables_take_only_a_whole_chunk():
    assert Chunk("wallet.t", None).label == "wallet.t (all)"
    with pytest.raises(ValueError, match=r"wallet\.t: bounds \[1, None\) given, but the table's key cannot be split"):
        Chunk("wallet.t", None, 1, None)


def test_uuid_bounds_are_normalised_and_ordered_bytewise():
    chunk = Chunk("issuer.tenants", "uuid", "0AAAAAAA-0000-0000-0000-000000000000", "a0000000-0000-0000-0000-000000000000")
    assert chunk.lower == "0aaaaaaa-0000-0000-0000-000000000000"


def test_round_trips_through_a_json_dict():
    chunk = Chunk("recruiter.users", "text", "a\tb", "zz")
    assert Chunk.from_dict(chunk.to_dict()) == chunk
    assert Chunk.of(chunk.to_dict()) == chunk
    with pytest.raises(ValueError, match="not a chunk"):
        Chunk.from_dict({"table": "x", "kind": "integer", "size": 3})


def test_chunk_id_distinguishes_bounds_and_tables():
    ids = {Chunk("a.t", "integer", None, 5).chunk_id, Chunk("a.t", "integer", 5, None).chunk_id,
           Chunk("a.t", "integer").chunk_id, Chunk("b.t", "integer").chunk_id}
    assert len(ids) == 4


def test_boundaries_cut_contiguous_chunks_open_at_both_ends():
    chunks = chunks_from_boundaries("w.t", "integer", [300, 100, 100, 200])
    assert [(c.lower, c.upper) for c in chunks] == [(None, 100), (100, 200), (200, 300), (300, None)]
    assert [(c.lower, c.upper) for c in chunks_from_boundaries("w.t", "integer", [])] == [(None, None)]
    assert chunks_from_boundaries("w.t", None, [1, 2]) == [Chunk("w.t", None)]


def test_text_boundaries_sort_by_code_point():
    chunks = chunks_from_boundaries("w.t", "text", ["b", "Z", "é", "a"])
    assert [c.lower for c in chunks[1:]] == ["Z", "a", "b", "é"]


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
