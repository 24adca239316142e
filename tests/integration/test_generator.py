"""The synthetic Credity data: every table and state-store key filled at the
default scale, the hard values present, and the same seed giving the same data."""

from __future__ import annotations

from decimal import Decimal

import pytest
from psycopg import sql

from migration_engine.canonical import hash_sum, pin_output_settings
from migration_engine.generator import GeneratorError, generate, main, planned_rows
from migration_engine.schema_sql import create_source_layout

pytestmark = pytest.mark.integration

SEED = 11
CREDITY_TABLES = 32
MIN_PAYLOAD_BYTES = 1_000_000


@pytest.fixture(scope="module")
def generated(sources, manifest):
    create_source_layout(manifest, sources)
    return generate(manifest, sources, seed=SEED)


def connect(sources, service):
    return sources[service].connect(autocommit=True)


def columns_of(conn, table) -> list[tuple[str, bool, str]]:
    """(name, nullable, type name) in column order."""
    return conn.execute(
        "SELECT column_name, is_nullable = 'YES', udt_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        table.source_ident,
    ).fetchall()


def checksums(sources, manifest) -> dict[str, int]:
    """hash_sum of every table; the state store without updated_at, which is now() by design."""
    result = {}
    for table in manifest.tables:
        with connect(sources, table.service) as conn:
            names = [name for name, _nullable, _type in columns_of(conn, table)]
            if table.name == manifest.state_store.table:
                names.remove(manifest.state_store.updated_column)
            with conn.transaction():
                pin_output_settings(conn)
                query = sql.SQL("SELECT {} FROM {} AS t").format(hash_sum(names), sql.Identifier(*table.source_ident))
                result[table.qualified] = conn.execute(query).fetchone()[0]
    return result


def test_default_scale_fills_every_table_and_every_state_store_key(sources, generated, manifest):
    state_store = manifest.state_store
    relational = [t for t in manifest.tables if t.name != state_store.table]
    assert len(relational) == CREDITY_TABLES
    assert generated == planned_rows(manifest)
    for table in manifest.tables:
        with connect(sources, table.service) as conn:
            count = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table.source_ident))
            ).fetchone()[0]
        assert count == generated[table.qualified] > 0, table.qualified

    for service, keys in state_store.keys_by_service.items():
        with connect(sources, service) as conn:
            rows = conn.execute(
                "SELECT service_key, octet_length(payload::text), updated_at > now() - interval '1 hour'"
                " FROM public.credverse_state_store ORDER BY service_key"
            ).fetchall()
        assert [key for key, _size, _fresh in rows] == sorted(keys)
        for key, size, fresh in rows:
            assert size > MIN_PAYLOAD_BYTES and fresh, key


def test_every_nullable_column_holds_nulls_and_every_enum_label_occurs(sources, generated, manifest):
    enum_columns = 0
    for table in manifest.tables:
        with connect(sources, table.service) as conn:
            enums = {name for (name,) in conn.execute("SELECT typname FROM pg_type WHERE typtype = 'e'")}
            relation = sql.Identifier(*table.source_ident)
            for column, nullable, type_name in columns_of(conn, table):
                ident = sql.Identifier(column)
                nulls = conn.execute(
                    sql.SQL("SELECT count(*) FROM {} WHERE {} IS NULL").format(relation, ident)
                ).fetchone()[0]
                assert (nulls > 0) == nullable, f"{table.qualified}.{column}"
                if type_name in enums:
                    enum_columns += 1
                    query = sql.SQL(
                        "SELECT array_agg(DISTINCT {c}::text) FILTER (WHERE {c} IS NOT NULL) = "
                        "(SELECT array_agg(label::text ORDER BY label::text) FROM unnest(enum_range(NULL::{t})) AS label)"
                        " FROM {r}"
                    ).format(c=ident, t=sql.Identifier(table.source_schema, type_name), r=relation)
                    assert conn.execute(query).fetchone()[0], f"{table.qualified}.{column} lacks an enum label"
    assert enum_columns == 8


HARD_TEXT = {
    "tab": "\t",
    "newline": "\n",
    "backslash": "\\",
    "single quote": "'",
    "double quote": '"',
    "emoji": "😀",
    "CJK": "中文",
    "combining mark": "e\u0301",
    "right-to-left": "مرحبا",
}


def test_hard_values_are_present(sources, generated):
    with connect(sources, "wallet") as conn:
        for name, fragment in HARD_TEXT.items():
            hits = conn.execute(
                "SELECT count(*) FROM public.activities WHERE strpos(description, %s) > 0", (fragment,)
            ).fetchone()[0]
            assert hits > 0, f"no {name} in wallet activities"
            in_jsonb = conn.execute(
                "SELECT count(*) FROM public.credentials WHERE strpos(data ->> 'label', %s) > 0", (fragment,)
            ).fetchone()[0]
            assert in_jsonb > 0, f"no {name} inside wallet credential jsonb"
        amounts = conn.execute(
            "SELECT min(claim_amount), max(claim_amount), count(*) FILTER (WHERE claim_amount = 0) FROM public.claims"
        ).fetchone()
        assert amounts == (Decimal("-9999999999.99"), Decimal("9999999999.99"), amounts[2]) and amounts[2] > 0
        decays = conn.execute("SELECT min(decay_factor), max(decay_factor) FROM public.reputation_events").fetchone()
        assert decays == (Decimal("-9.9999"), Decimal("9.9999"))
        large_nested = conn.execute(
            "SELECT count(*) FROM public.credentials"
            " WHERE jsonb_array_length(CASE WHEN jsonb_typeof(data -> 'bulk') = 'array' THEN data -> 'bulk' END) = 400 AND (data #>> '{nested,inner,level}')::int = 3"
        ).fetchone()[0]
        assert large_nested > 0
        micro = conn.execute(
            "SELECT count(*) FROM public.credentials WHERE mod(extract(microseconds FROM issuance_date)::bigint, 1000) <> 0"
        ).fetchone()[0]
        assert micro > 0
    with connect(sources, "issuer") as conn:
        extremes = conn.execute("SELECT min(score), max(score) FROM public.reputation_events").fetchone()
        assert extremes == (-2147483648, 2147483647)


def test_same_seed_gives_identical_checksums_and_filled_tables_are_refused(
    sources, generated, manifest, estate, monkeypatch
):
    first = checksums(sources, manifest)

    with pytest.raises(GeneratorError, match="already holds rows"):
        generate(manifest, sources, seed=SEED)
    assert checksums(sources, manifest) == first

    # Through the CLI, as an engineer runs it against the estate's AIRFLOW_CONN_* variables.
    for variable, url in estate.airflow_env().items():
        monkeypatch.setenv(variable, url)
    assert main(["--seed", str(SEED), "--replace"]) == 0
    assert checksums(sources, manifest) == first

    generate(manifest, sources, seed=SEED + 1, replace=True)
    other = checksums(sources, manifest)
    assert [name for name in first if first[name] != other[name]] == list(first)
