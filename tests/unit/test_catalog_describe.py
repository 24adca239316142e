"""What the data path reads of a table's catalog, without a database: column agreement and copy format."""

from __future__ import annotations

import pytest

from migration_engine.catalog import Column, ColumnMismatch, TableDescription, copy_format, matching_columns


def column(name: str, type_: str, *, text_copy: bool = False) -> Column:
    return Column(name, type_, type_, -1, False, None, "", "", text_copy, (), False, None)


def table(*columns: Column) -> TableDescription:
    return TableDescription(columns, None)


def matching(source: TableDescription | None, target: TableDescription | None) -> tuple[Column, ...]:
    return matching_columns("wallet.t", source, target, source_name="public.t", target_name="wallet.t")


def test_agreeing_tables_give_the_source_columns_in_order():
    source = table(column("id", "integer"), column("note", "text"))
    assert matching(source, table(column("note", "text"), column("id", "integer"))) == source.columns


def test_every_disagreement_is_named():
    source = table(column("id", "integer"), column("note", "text"), column("gone", "text"))
    target = table(column("id", "bigint"), column("note", "text"), column("added", "jsonb"))
    with pytest.raises(ColumnMismatch) as caught:
        matching(source, target)
    assert str(caught.value) == (
        "wallet.t: column id is integer in source, bigint in target; column gone (text) exists in source, missing in "
        "target; column added (jsonb) exists in target, missing in source"
    )


def test_a_missing_table_is_named_with_its_side():
    with pytest.raises(ColumnMismatch, match=r"wallet\.t: table public\.t does not exist in the source"):
        matching(None, table())
    with pytest.raises(ColumnMismatch, match=r"wallet\.t: table wallet\.t does not exist in the target; apply the schema first"):
        matching(table(), None)


def test_one_column_binary_copy_cannot_carry_sends_the_table_as_text():
    assert copy_format([column("id", "integer"), column("note", "text")]) == "binary"
    assert copy_format([column("id", "integer"), column("moods", "mood[]", text_copy=True)]) == "text"
