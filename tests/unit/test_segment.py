"""Table segments without a database: validation, labels, predicates, splits and buckets."""

from __future__ import annotations

import uuid

import pytest

from migration_engine.segment import KEY_KINDS_BY_TYPE, KeyKind, TableSegment, dedupe_sorted


def rendered(segment: TableSegment, alias: str | None = None) -> str:
    return segment.predicate(alias).as_string(None)


def test_label_shows_bounds_and_open_ends():
    assert TableSegment("wallet.activities", "id", "integer", 1200000, 1400000).label == "wallet.activities [1200000, 1400000)"
    assert TableSegment("wallet.activities", "id", "integer", None, 5).label == "wallet.activities (-inf, 5)"
    assert TableSegment("wallet.activities", "id", "integer", 5, None).label == "wallet.activities [5, +inf)"
    assert TableSegment("wallet.activities", "id", "integer").label == "wallet.activities (all)"


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
    with pytest.raises(ValueError, match=r"wallet\.t: segment lower bound .* must be below upper bound"):
        TableSegment("wallet.t", "id", kind, lower, upper)


def test_bounds_must_fit_the_key_kind():
    with pytest.raises(ValueError, match=r"wallet\.t: integer key bound must be a whole number, found '5'"):
        TableSegment("wallet.t", "id", "integer", "5", None)
    with pytest.raises(ValueError, match=r"wallet\.t: integer key bound must be a whole number, found True"):
        TableSegment("wallet.t", "id", "integer", True, None)
    with pytest.raises(ValueError, match=r"wallet\.t: uuid key bound 'nope' is not a uuid"):
        TableSegment("wallet.t", "id", "uuid", "nope", None)
    with pytest.raises(ValueError, match=r"wallet\.t: text key bound must be a string, found 5"):
        TableSegment("wallet.t", "id", "text", 5, None)
    with pytest.raises(ValueError, match=r"wallet\.t: key kind 'float' is not one of integer, uuid, text"):
        TableSegment("wallet.t", "id", "float", 1.0, 2.0)


def test_a_range_needs_its_key_column_and_a_key_column_its_kind():
    with pytest.raises(ValueError, match=r"wallet\.t: integer key bounds need the key column they apply to"):
        TableSegment("wallet.t", None, "integer", 1, 2)
    with pytest.raises(ValueError, match=r"wallet\.t: key column 'id' given without a key kind"):
        TableSegment("wallet.t", "id", None)


def test_unrangeable_keys_take_only_a_whole_segment():
    whole = TableSegment("wallet.t", None, None)
    assert whole.label == "wallet.t (all)"
    assert rendered(whole) == "TRUE"
    assert whole.split([1, 2]) == [whole]
    with pytest.raises(ValueError, match=r"wallet\.t: bounds \[1, None\) given, but the table's key cannot be split"):
        TableSegment("wallet.t", None, None, 1, None)


def test_uuid_bounds_are_normalised_and_ordered_bytewise():
    segment = TableSegment("issuer.tenants", "id", "uuid", "0AAAAAAA-0000-0000-0000-000000000000",
                           uuid.UUID("a0000000-0000-0000-0000-000000000000"))
    assert (segment.lower, segment.upper) == ("0aaaaaaa-0000-0000-0000-000000000000", "a0000000-0000-0000-0000-000000000000")
    assert segment.kind is KeyKind.UUID


def test_round_trips_through_a_json_dict():
    segment = TableSegment("recruiter.users", "email", "text", "a\tb", "zz")
    assert segment.to_dict()["kind"] == "text"
    assert TableSegment.from_dict(segment.to_dict()) == segment
    assert TableSegment.of(segment.to_dict()) == segment
    assert TableSegment.of(TableSegment("a.t", None, None).to_dict()) == TableSegment("a.t", None, None)
    with pytest.raises(ValueError, match="not a table segment"):
        TableSegment.from_dict({"table": "x", "key": "id", "kind": "integer", "size": 3})
    with pytest.raises(ValueError, match="not a table segment"):
        TableSegment.from_dict({"table": "x", "kind": "integer"})


def test_chunk_id_distinguishes_bounds_and_tables():
    ids = {TableSegment("a.t", "id", "integer", None, 5).chunk_id, TableSegment("a.t", "id", "integer", 5, None).chunk_id,
           TableSegment("a.t", "id", "integer").chunk_id, TableSegment("b.t", "id", "integer").chunk_id}
    assert len(ids) == 4
    # The ledger's identity of a chunk: stable across releases, so recorded chunks stay recorded.
    assert TableSegment("a.t", "id", "integer", 5, None).chunk_id == '["a.t",5,null]'


def test_predicate_bounds_only_the_closed_ends():
    assert rendered(TableSegment("w.t", "id", "integer", 1, 9)) == '"id" >= %(lower)s AND "id" < %(upper)s'
    assert rendered(TableSegment("w.t", "id", "integer", None, 9), "t") == '"t"."id" < %(upper)s'
    assert rendered(TableSegment("w.t", "id", "uuid", str(uuid.UUID(int=1)))) == '"id" >= %(lower)s'
    assert rendered(TableSegment("w.t", "id", "integer")) == "TRUE"
    assert TableSegment("w.t", "id", "integer", None, 9).params == {"lower": None, "upper": 9}


def test_text_and_char_keys_compare_in_byte_order():
    # char(n) is a text kind: cast to text, its padding goes, and both sides compare it in byte order.
    assert KEY_KINDS_BY_TYPE["bpchar"] is KEY_KINDS_BY_TYPE["varchar"] is KeyKind.TEXT
    assert rendered(TableSegment("w.t", "code", "text", "a", "b"), "t") == \
        '("t"."code"::text COLLATE "C") >= %(lower)s AND ("t"."code"::text COLLATE "C") < %(upper)s'


def test_split_cuts_contiguous_segments_open_at_both_ends():
    whole = TableSegment("w.t", "id", "integer")
    assert [(s.lower, s.upper) for s in whole.split([300, 100, 100, None, 200])] == \
        [(None, 100), (100, 200), (200, 300), (300, None)]
    assert whole.split([]) == [whole]


def test_split_keeps_within_the_segments_own_bounds():
    part = TableSegment("w.t", "id", "integer", 100, 300)
    assert [(s.lower, s.upper) for s in part.split([50, 100, 200, 300, 400])] == [(100, 200), (200, 300)]


def test_split_of_uuid_keys_orders_bytewise():
    low, high = uuid.UUID(int=1), uuid.UUID(int=2**127)
    pieces = TableSegment("i.t", "id", "uuid").split([high, str(low).upper()])
    assert [(s.lower, s.upper) for s in pieces] == [(None, str(low)), (str(low), str(high)), (str(high), None)]


@pytest.mark.parametrize("type_name", ["text", "bpchar"])
def test_split_of_text_keys_sorts_by_code_point(type_name):
    pieces = TableSegment("w.t", "code", KEY_KINDS_BY_TYPE[type_name]).split(["b", "Z", "é", "a"])
    assert [s.lower for s in pieces[1:]] == ["Z", "a", "b", "é"]


def test_buckets_merge_adjacent_ones_and_leave_ends_open():
    whole, bounds = TableSegment("w.t", "id", "integer"), [10, 20, 30, 40]

    def ranges(numbers):
        return [(s.lower, s.upper) for s in whole.buckets(bounds, numbers)]

    assert ranges([0]) == [(None, 10)]
    assert ranges([4]) == [(40, None)]
    assert ranges([2, 1, 3]) == [(10, 40)]
    assert ranges([0, 2, 4]) == [(None, 10), (20, 30), (40, None)]
    assert [(s.lower, s.upper) for s in whole.buckets([], [0])] == [(None, None)]
    with pytest.raises(ValueError, match=r"w\.t: bucket 5 is outside 0\.\.4"):
        whole.buckets(bounds, [5])


def test_dedupe_sorted():
    assert dedupe_sorted([1, 1, 2, 3, 3]) == [1, 2, 3]
