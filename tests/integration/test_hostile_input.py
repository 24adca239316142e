"""Hostile names and hostile values through the engine, hostile Params through Airflow.

A manifest whose schemas, tables and key column are named with quotes,
semicolons, spaces and unicode (`x"; DROP TABLE y; --`) goes through the
schema compare, the chunked copy, verification and reconciliation; the rows
also carry values that stress COPY and the checksums (hostile text, a 10 MB
jsonb, numeric NaN, ±infinity timestamps, '' beside NULL). A table named
`public.y` (on the search path) on both sides must survive all of it. Then every DAG's Params get
SQL fragments, names outside the manifest and absurd numbers: each is refused
naming the Param, and the target is left as it was.
"""

from __future__ import annotations

import pytest
import yaml
from psycopg import sql

from migration_engine import catalog, ledger, verify
from migration_engine.chunks import plan_all
from migration_engine.copier import copy_chunk
from migration_engine.endpoints import from_url
from migration_engine.manifest import DEFAULT_MANIFEST, load_manifest
from migration_engine.reconcile.engine import Direction, reconcile_table

pytestmark = [pytest.mark.integration]

SOURCE_SCHEMA = 'src"; DROP TABLE y; --'
TARGET_SCHEMA = "tgt schema ünï'code"
CONTROL = 'ctl "; --'
TABLES = {
    'x"; DROP TABLE y; --': "id",
    "o'brien; SELECT 1": "key; col",
    "ünï çødé ☃ table": "Id With Spaces",
}
HOSTILE_TEXT = "';\\. \\N \t tab \r\n newline \"q\" \\x00-looking ☃ 🚀 \u200b DROP TABLE y; --"
ROWS = 300
BIG_JSON_BYTES = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def hostile_manifest(tmp_path_factory):
    raw = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    raw["migration"] = "hostile"
    raw["connections"]["sources"] = {"hostile": {"conn_id": "hostile_source"}}
    raw["control_schema"] = CONTROL
    raw["services"] = {"hostile": {
        "source": "hostile", "source_schema": SOURCE_SCHEMA, "target_schema": TARGET_SCHEMA,
        "tables": {name: {"key": [key], "chunk_rows": 60} for name, key in TABLES.items()}
        | {"credverse_state_store": {"key": ["service_key"]}},
    }}
    raw["state_store"]["keys_by_service"] = {"hostile": ["hostile-storage"]}
    path = tmp_path_factory.mktemp("hostile") / "hostile.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    return load_manifest(path)


def _create(conn, schema: str) -> None:
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    # The table the names try to drop, where a broken quoting would resolve it.
    conn.execute("CREATE TABLE IF NOT EXISTS public.y (id int PRIMARY KEY)")
    for name, key in TABLES.items():
        conn.execute(sql.SQL(
            "CREATE TABLE {} ({} bigint PRIMARY KEY, {} text, body text, empty text, doc jsonb, amount numeric, "
            "seen timestamptz, day date)"
        ).format(sql.Identifier(schema, name), sql.Identifier(key), sql.Identifier("col; DROP TABLE y")))
    conn.execute(sql.SQL(
        "CREATE TABLE {} (service_key text PRIMARY KEY, payload jsonb, updated_at timestamptz NOT NULL DEFAULT now())"
    ).format(sql.Identifier(schema, "credverse_state_store")))


def _fill(conn, schema: str) -> None:
    """Rows whose values stress COPY and the checksums; the first table also holds one 10 MB jsonb."""
    for name, key in TABLES.items():
        conn.execute(sql.SQL(
            "INSERT INTO {} ({}, {}, body, empty, doc, amount, seen, day) "
            "SELECT g, %(text)s || g, CASE WHEN g %% 3 = 0 THEN '' WHEN g %% 3 = 1 THEN NULL ELSE %(text)s END, "
            "CASE WHEN g %% 2 = 0 THEN '' END, jsonb_build_object('k', %(text)s, 'n', g), "
            "CASE g %% 4 WHEN 0 THEN 'NaN'::numeric WHEN 1 THEN 1e-30 WHEN 2 THEN -123456789.123456789 END, "
            "CASE g %% 3 WHEN 0 THEN 'infinity'::timestamptz WHEN 1 THEN '-infinity'::timestamptz END, "
            "CASE g %% 3 WHEN 0 THEN 'infinity'::date WHEN 1 THEN '-infinity'::date END "
            "FROM generate_series(1, %(rows)s) AS g"
        ).format(sql.Identifier(schema, name), sql.Identifier(key), sql.Identifier("col; DROP TABLE y")),
            {"text": HOSTILE_TEXT, "rows": ROWS})
    first, key = next(iter(TABLES.items()))
    conn.execute(sql.SQL("UPDATE {} SET doc = jsonb_build_object('big', repeat(%s, %s)) WHERE {} = 7").format(
        sql.Identifier(schema, first), sql.Identifier(key)), ("é\"';", BIG_JSON_BYTES // 5))


@pytest.fixture(scope="module")
def hostile(estate, hostile_manifest):
    """The hostile layout on the source (with rows) and the target (empty)."""
    estate.source.create_database("hostile")
    source = from_url("hostile source", estate.source.url("hostile"))
    with source.connect(autocommit=True) as conn:
        _create(conn, SOURCE_SCHEMA)
        _fill(conn, SOURCE_SCHEMA)
    with estate.target_endpoint().connect(autocommit=True) as conn:
        _create(conn, TARGET_SCHEMA)
    return {"hostile": source}


def _tables_named_y(estate, sources) -> int:
    query = "SELECT count(*) FROM pg_tables WHERE tablename = 'y'"
    with sources["hostile"].connect() as src, estate.target_endpoint().connect() as tgt:
        return src.execute(query).fetchone()[0] + tgt.execute(query).fetchone()[0]


def test_hostile_names_and_values_copy_verify_and_reconcile_exactly(estate, hostile_manifest, hostile):
    m = hostile_manifest
    with hostile["hostile"].connect() as src, estate.target_endpoint().connect() as tgt:
        catalog.check_schema_matches_source(src, tgt, m, "hostile", deferred=False)
    chunks = plan_all(m, hostile)
    assert len({c.table for c in chunks}) == len(TABLES) + 1
    assert len(chunks) > len(TABLES) + 1, "the hostile keys were never used to split a table into ranges"
    for chunk in chunks:
        copy_chunk(hostile["hostile"], estate.target_endpoint(), m, chunk)
    result = verify.verify(hostile, estate.target_endpoint(), m, state_store=False)
    assert result["ok"], result["failures"]
    assert {r["rows_source"] for r in result["tables"] if r["table"] != f"{TARGET_SCHEMA}.credverse_state_store"} == {ROWS}

    # Drift in every hostile table: a changed value, a '' turned NULL, a NaN turned a number, a missing row.
    with hostile["hostile"].connect(autocommit=True) as conn:
        for name, key in TABLES.items():
            ident, keycol = sql.Identifier(SOURCE_SCHEMA, name), sql.Identifier(key)
            conn.execute(sql.SQL("UPDATE {} SET body = %s WHERE {} = 5").format(ident, keycol), (HOSTILE_TEXT + "!",))
            conn.execute(sql.SQL("UPDATE {} SET empty = NULL WHERE {} = 2").format(ident, keycol))
            conn.execute(sql.SQL("UPDATE {} SET amount = 0 WHERE {} = 4").format(ident, keycol))
            conn.execute(sql.SQL("INSERT INTO {} ({}, body) VALUES (100000, '')").format(ident, keycol))
    for table in m.tables:
        outcome = reconcile_table(table, hostile["hostile"], estate.target_endpoint(), run_id="hostile",
                                  direction=Direction.SOURCE_TO_TARGET, control_schema=CONTROL, grace_seconds=0)
        expected = 0 if table.name == "credverse_state_store" else 4
        assert (outcome.drifted, outcome.repaired) == (expected, expected), outcome.summary()
    again = verify.verify(hostile, estate.target_endpoint(), m, state_store=False)
    assert again["ok"], again["failures"]
    assert _tables_named_y(estate, hostile) == 2


def test_a_type_difference_under_hostile_names_is_named(estate, hostile_manifest, hostile):
    table = next(iter(TABLES))
    with estate.target_endpoint().connect(autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN amount TYPE double precision").format(
            sql.Identifier(TARGET_SCHEMA, table)))
    try:
        with hostile["hostile"].connect() as src, estate.target_endpoint().connect() as tgt:
            with pytest.raises(catalog.SchemaMismatch) as caught:
                catalog.check_schema_matches_source(src, tgt, hostile_manifest, "hostile")
        assert table in str(caught.value) and "amount" in str(caught.value)
    finally:
        with estate.target_endpoint().connect(autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN amount TYPE numeric").format(
                sql.Identifier(TARGET_SCHEMA, table)))


# --- Params through Airflow: refused, naming the Param, nothing written -------------------------

SQL_FRAGMENTS = ["x; DROP TABLE wallet.users; --", "wallet.users'; --", 'wallet."users"', "wallet.ûsers ☃"]


def _target_state(estate, manifest) -> tuple:
    with estate.target_endpoint().connect(autocommit=True) as conn:
        schemas = sorted(r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"))
        phase = ledger.current_phase(conn, manifest.control_schema) if manifest.control_schema in schemas else None
    return schemas, phase


def _refused(result, *phrases: str) -> None:
    assert result.returncode != 0, result.output[-3000:]
    for phrase in phrases:
        assert phrase in result.output, f"{phrase!r} not in:\n{result.output[-3000:]}"


@pytest.mark.airflow
def test_table_params_with_sql_fragments_are_refused_naming_them(estate, manifest, run):
    """backfill and verify declare the same Param (manifest names only); backfill stands for both."""
    before = _target_state(estate, manifest)
    result = run("backfill", {"tables": SQL_FRAGMENTS})
    _refused(result, "Invalid input for param tables", "is not one of")
    assert any(repr(fragment) in result.output for fragment in SQL_FRAGMENTS), "the refused value is not named"
    assert result.task_states == {}, "a task ran although the Params were refused at trigger time"
    assert _target_state(estate, manifest) == before


@pytest.mark.airflow
@pytest.mark.parametrize(("dag_id", "conf", "param"), [
    # Refused by the Params' schemas when the run is triggered, before any task (every backfill
    # number's bounds, without a run each, are in tests/dags/test_dag_integrity.py).
    ("backfill", {"max_copy_mb_per_s": -1}, "max_copy_mb_per_s"),
    ("finalize", {"confirm": "FINALIZE", "retention_days": -3}, "retention_days"),
])
def test_negative_or_absurd_numbers_are_refused_naming_the_param(estate, manifest, run, dag_id, conf, param):
    before = _target_state(estate, manifest)
    result = run(dag_id, conf)
    _refused(result, f"Invalid input for param {param}")
    assert result.task_states == {}, "a task ran although the Params were refused at trigger time"
    assert _target_state(estate, manifest) == before


@pytest.mark.airflow
# Every DAG's confirm goes through one gate (cutover's refusals are in test_cutover_dag.py).
@pytest.mark.parametrize(("dag_id", "word", "given"), [("finalize", "FINALIZE", "x'; DROP TABLE wallet.users; --")])
def test_wrong_confirm_words_are_refused_before_any_database(estate, manifest, run, dag_id, word, given):
    before = _target_state(estate, manifest)
    result = run(dag_id, {"confirm": given, "dry_run": False})
    _refused(result, f"the confirm parameter must be exactly '{word}'")
    assert _target_state(estate, manifest) == before
