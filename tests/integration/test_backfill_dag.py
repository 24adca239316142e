"""Phase C through Airflow: the backfill and verify DAGs on a generated Credity
source, with the source at +05:30 / DateStyle SQL,DMY and the target at UTC /
ISO,MDY (the owner's servers and a managed target).

The module is one migration's life, in order, as one test (each step starts from what
the one before left): refused before the schema baseline, a chunk killed mid-copy and
re-run, the whole run cleared and re-run, a table re-synced under a copy rate limit,
serial inserts, the full verification (which moves the ledger to ``verified``) with an
independent pg_dump comparison, then one changed value caught. Each step leaves the
target equal to the source.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg import sql

from migration_engine.backup import client_binary, libpq_environment
from migration_engine.generator import generate
from migration_engine.local.servers import wait_until
from migration_engine.schema_sql import create_source_layout
from tests.integration.backfill_support import remove_slow_down, slow_down, source_sql, target_sql

# One test is the backfill's whole life, a dozen DAG runs: longer than the suite's 15 minutes under load.
pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.timeout(2700)]

SEED = 7
CHUNK_ROWS = 500
COPY_MB_PER_S = 50
# One logical date for every backfill run: running it again clears that run and runs it anew.
RUN_DATE = "2026-03-01T00:00:00+00:00"
SLOW_TABLE = "wallet.activities"
BACKFILL_APP = "credity-migration-backfill"


@pytest.fixture(scope="module")
def env(estate, tmp_path_factory):
    folder = tmp_path_factory.mktemp("backfill_dag")
    return {
        **estate.airflow_env(),
        "MIGRATION_BACKUP_DIR": str(folder / "backups"),
        "MIGRATION_ARTIFACT_DIR": str(folder / "artifacts"),
    }


@pytest.fixture(scope="module")
def preflighted(estate, manifest, airflow_home, env):
    """Generated sources on a +05:30 server, a UTC target, and a passed preflight."""
    estate.source.configure(TimeZone="Asia/Kolkata", DateStyle="SQL, DMY")
    estate.source.restart()
    estate.target.configure(TimeZone="UTC", DateStyle="ISO, MDY")
    estate.target.restart()
    endpoints = estate.source_endpoints()
    create_source_layout(manifest, endpoints)
    generate(manifest, endpoints, scale=1, seed=SEED)
    result = airflow_home.run_dag("preflight", extra_env=env)
    assert result.succeeded, result.output[-6000:]
    return estate


def run_schema_baseline(preflighted, airflow_home, env):
    result = airflow_home.run_dag("schema_baseline", extra_env=env)
    assert result.succeeded, result.output[-6000:]
    return preflighted


def run_backfill(airflow_home, env, **conf):
    return airflow_home.run_dag("backfill", {"target_chunk_rows": CHUNK_ROWS, **conf}, extra_env=env, logical_date=RUN_DATE)


def run_verify(airflow_home, env, **conf):
    """The catch-up, then the verification, as the Assets chain them (``dags test`` fires no Asset).
    A catch-up that refuses unexplained drift leaves the verification to name it too."""
    airflow_home.run_dag("catch_up", extra_env=env)
    return airflow_home.run_dag("verify", conf or None, extra_env=env)


def chunk_ledger(estate) -> dict[str, tuple]:
    rows = target_sql(estate, "SELECT label, copies, mode, rows FROM migration_control.backfill_chunks")
    return {label: (copies, mode, count) for label, copies, mode, count in rows}


def metadata_rows(airflow_home, statement, params=None) -> list:
    import psycopg

    with psycopg.connect(airflow_home.metadata_db.replace("postgresql+psycopg2://", "postgresql://", 1)) as conn:
        return conn.execute(statement, params).fetchall()


def copy_results(airflow_home, dag_id: str = "backfill") -> list[dict]:
    """Every chunk result in the copy_chunk XComs of the latest run, from the metadata DB."""
    rows = metadata_rows(
        airflow_home,
        "SELECT x.value FROM xcom x WHERE x.dag_id = %s AND x.task_id = 'copy_chunk' AND x.key = 'return_value' "
        "AND x.run_id = (SELECT run_id FROM dag_run WHERE dag_id = %s ORDER BY id DESC LIMIT 1)",
        (dag_id, dag_id),
    )
    tasks = [v if isinstance(v, dict) else json.loads(v) for (v,) in rows]
    return [chunk for task in tasks for chunk in task["chunks"]]


def ledger_phase(estate) -> str:
    return target_sql(estate, "SELECT current_phase FROM migration_control.status")[0][0]


def backfill_before_schema_baseline_is_refused(preflighted, manifest, airflow_home, env):
    result = run_backfill(airflow_home, env)
    assert result.returncode != 0
    assert result.state_of("check_ledger_phase") == "failed", result.task_states
    assert "schema_applied" in result.output and "preflight_passed" in result.output, result.output[-4000:]
    assert not any(t.startswith("copy_chunk") and s == "success" for t, s in result.task_states.items())
    tables = target_sql(preflighted, "SELECT count(*) FROM pg_tables WHERE schemaname = ANY(%s)",
                        ([s.target_schema for s in manifest.services],))[0][0]
    assert tables == 0


def verified(estate, manifest, tables=None) -> dict:
    """The verification engine the verify DAG runs (without moving the ledger)."""
    from migration_engine.verify import verify

    endpoints = estate.source_endpoints()
    return verify(endpoints, estate.target_endpoint(), manifest, tables=tables)


def assert_target_equals_source(estate, manifest) -> None:
    result = verified(estate, manifest)
    assert result["ok"], result["failures"]
    for table in manifest.tables:
        if len(table.key) != 1:
            continue
        key = sql.Identifier(table.key[0])
        total, distinct = target_sql(estate, sql.SQL("SELECT count(*), count(DISTINCT {}) FROM {}").format(
            key, sql.Identifier(*table.target_ident)))[0]
        assert total == distinct, f"{table.qualified}: duplicate keys in the target"


def backends(estate, wait_event: str | None = None) -> list:
    return target_sql(
        estate,
        "SELECT pid, wait_event, left(query, 60) FROM pg_stat_activity WHERE application_name = %s "
        "AND (%s::text IS NULL OR wait_event = %s)",
        (BACKFILL_APP, wait_event, wait_event),
    )


def chunk_killed_mid_copy_then_cleared_and_rerun_loses_and_duplicates_nothing(baselined, manifest, airflow_home, env, tmp_path):
    estate = baselined
    table = manifest.table(SLOW_TABLE)
    # Cut points are at the quartiles (target_chunk_rows 500 of 2000 rows): this key is inside the third chunk.
    stuck_key = source_sql(estate, table.service, "SELECT percentile_disc(0.6) WITHIN GROUP (ORDER BY id) FROM activities")[0][0]
    slow_down(estate, SLOW_TABLE, stuck_key, seconds=6)
    log_file = tmp_path / "killed_run.log"
    with open(log_file, "w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "airflow"), "dags", "test", "backfill", RUN_DATE,
             "--conf", json.dumps({"target_chunk_rows": CHUNK_ROWS})],
            env={**airflow_home.env, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            assert wait_until(lambda: bool(backends(estate, "PgSleep")), timeout=300, interval=0.2), log_file.read_text()[-4000:]
        finally:
            # The task, its supervisor and dags test itself, with no chance to clean up.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # The server notices the dead client once the sleep ends and rolls the chunk back.
    assert wait_until(lambda: not backends(estate), timeout=60)
    remove_slow_down(estate, SLOW_TABLE)

    running = metadata_rows(airflow_home,
                            "SELECT map_index, rendered_map_index FROM task_instance WHERE dag_id = 'backfill' "
                            "AND task_id = 'copy_chunk' AND state = 'running'")
    assert len(running) == 1 and running[0][1].startswith(SLOW_TABLE), running
    recorded = chunk_ledger(estate)
    assert running[0][1] not in recorded
    landed = target_sql(estate, "SELECT count(*), count(*) FILTER (WHERE id = %s) FROM wallet.activities", (stuck_key,))[0]
    recorded_rows = sum(rows for label, (_c, _m, rows) in recorded.items() if label.startswith(SLOW_TABLE + " "))
    assert landed == (recorded_rows, 0), "a killed chunk left rows behind"

    cleared = airflow_home.airflow("tasks", "clear", "backfill", "--task-regex", "^copy_chunk$", "--yes", extra_env=env)
    assert cleared.returncode == 0
    rerun = run_backfill(airflow_home, env)
    assert rerun.succeeded, rerun.output[-8000:]
    results = {r["chunk"]: r for r in copy_results(airflow_home)}
    assert results[running[0][1]]["mode"] == "copy"
    assert {label for label, r in results.items() if r["mode"] == "skipped"} == set(recorded)
    ledger = chunk_ledger(estate)
    assert set(ledger) == set(results)
    assert {copies for copies, _mode, _rows in ledger.values()} == {1}
    assert_target_equals_source(estate, manifest)


def whole_run_cleared_and_rerun_copies_nothing_twice(baselined, manifest, airflow_home, env):
    estate = baselined
    before = chunk_ledger(estate)
    cleared = airflow_home.airflow("tasks", "clear", "backfill", "--yes", extra_env=env)
    assert cleared.returncode == 0
    rerun = run_backfill(airflow_home, env)
    assert rerun.succeeded, rerun.output[-8000:]
    results = copy_results(airflow_home)
    assert len(results) == len(before)
    assert {r["mode"] for r in results} == {"skipped"}
    assert chunk_ledger(estate) == before
    assert {copies for copies, _mode, _rows in before.values()} == {1}
    assert_target_equals_source(estate, manifest)
    events = metadata_rows(airflow_home, "SELECT count(*) FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.name = %s",
                           ("credity_backfilled",))[0][0]
    assert events >= 2, "each successful backfill run publishes the Asset that schedules verify"


def resync_of_stale_and_extra_rows_converges_to_the_source(baselined, manifest, airflow_home, env):
    estate = baselined
    with estate.target_endpoint().connect() as conn:
        expected_updated = conn.execute("SELECT count(*) FROM wallet.activities WHERE id % 7 = 0 AND id % 11 <> 0").fetchone()[0]
        expected_inserted = conn.execute("SELECT count(*) FROM wallet.activities WHERE id % 11 = 0").fetchone()[0]
        conn.execute("""UPDATE wallet.activities SET description = 'stale', "timestamp" = "timestamp" - interval '1 day' WHERE id % 7 = 0""")
        conn.execute("DELETE FROM wallet.activities WHERE id % 11 = 0")
        conn.execute("CREATE TEMP TABLE extra AS SELECT * FROM wallet.activities WHERE id % 10 = 0")
        conn.execute("UPDATE extra SET id = id + 10000000")
        expected_deleted = conn.execute("INSERT INTO wallet.activities SELECT * FROM extra").rowcount
        conn.commit()
    assert not verified(estate, manifest, [SLOW_TABLE])["ok"]

    # A generous throttle: the Param reaches every chunk's copy through Airflow without slowing the test.
    result = run_backfill(airflow_home, env, force=True, tables=[SLOW_TABLE], max_copy_mb_per_s=COPY_MB_PER_S)
    assert result.succeeded, result.output[-8000:]
    results = copy_results(airflow_home)
    assert {r["table"] for r in results} == {SLOW_TABLE} and {r["mode"] for r in results} == {"merge"}
    assert {r["max_mb_per_s"] for r in results} == {COPY_MB_PER_S}
    # Load-aware pacing is on by default, under the ceiling: every chunk reports what it measured.
    pacing = [r["pacing"] for r in results]
    assert all(p and p["budget_probe_ms"] > p["baseline_probe_ms"] > 0 and p["ceiling_mb_per_s"] == COPY_MB_PER_S
               for p in pacing), pacing
    assert sum(r["updated"] for r in results) == expected_updated
    assert sum(r["inserted"] for r in results) == expected_inserted
    assert sum(r["deleted"] for r in results) == expected_deleted
    ledger = chunk_ledger(estate)
    assert {c for label, (c, _m, _r) in ledger.items() if label.startswith(SLOW_TABLE + " ")} == {2}
    assert {c for label, (c, _m, _r) in ledger.items() if not label.startswith(SLOW_TABLE + " ")} == {1}
    assert_target_equals_source(estate, manifest)


def insert_without_an_id_succeeds_in_every_serial_table(baselined, manifest):
    from migration_engine.sequences import owned_sequences

    estate = baselined
    inserted = {}
    with estate.target_endpoint().connect() as conn:
        new_user = None
        for table in manifest.tables:
            serial = owned_sequences(conn, table.target_ident)
            if not serial:
                continue
            columns = conn.execute(
                "SELECT a.attname, format_type(a.atttypid, NULL), EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = a.attrelid "
                "AND c.contype = 'u' AND a.attnum = ANY(c.conkey)) FROM pg_attribute a WHERE a.attrelid = %s::regclass "
                "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                (sql.Identifier(*table.target_ident).as_string(conn),),
            ).fetchall()
            names, values = [], []
            for name, type_name, unique in columns:
                if name in serial:
                    continue
                names.append(sql.Identifier(name))
                if unique and type_name in ("text", "character varying"):
                    values.append(sql.SQL("gen_random_uuid()::text"))
                elif unique:
                    values.append(sql.Literal(new_user))
                else:
                    values.append(sql.Identifier(name))
            row = conn.execute(
                sql.SQL("INSERT INTO {t} ({cols}) SELECT {vals} FROM {t} LIMIT 1 RETURNING {key}").format(
                    t=sql.Identifier(*table.target_ident), cols=sql.SQL(", ").join(names),
                    vals=sql.SQL(", ").join(values), key=sql.Identifier(table.key[0])),
            ).fetchone()
            inserted[table.qualified] = row[0]
            if table.qualified == "wallet.users":
                new_user = row[0]
        conn.rollback()
    serial_tables = [t.qualified for t in manifest.tables if source_sql(
        estate, t.service, "SELECT count(*) FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
        "WHERE d.refobjid = to_regclass(%s) AND d.deptype IN ('a', 'i')", (".".join(t.source_ident),))[0][0]]
    assert serial_tables and set(inserted) == set(serial_tables)
    assert all(value is not None for value in inserted.values())


def pg_dump_rows(estate, endpoint, schema: str, name: str) -> tuple[str, list[str]]:
    """(column list, sorted data lines) of one table from ``pg_dump --data-only``."""
    with libpq_environment(endpoint.named("credity-migration-test-dump")) as child_env:
        dump = subprocess.run(
            [client_binary("pg_dump"), "--data-only", "--no-owner", f'--table="{schema}"."{name}"'],
            env={**child_env, "PGTZ": "UTC"}, capture_output=True, text=True, check=True,
        ).stdout
    lines = dump.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("COPY "))
    end = lines.index("\\.", start)
    header = lines[start].split(" ", 2)[2]
    return header, sorted(lines[start + 1:end])


def backfill_then_verify_pass_and_pg_dump_finds_no_difference(baselined, manifest, airflow_home, env):
    estate = baselined
    result = run_verify(airflow_home, env)
    assert result.succeeded, result.output[-8000:]
    assert ledger_phase(estate) == "verified"
    reports = sorted(Path(env["MIGRATION_ARTIFACT_DIR"], "verify").glob("*/verification.json"))
    report = json.loads(reports[-1].read_text())
    assert report["ok"] and len(report["tables"]) == len(manifest.tables)
    assert all(r["rows_source"] == r["rows_target"] and r["rows_source"] > 0 for r in report["tables"])
    for table in manifest.tables:
        source = pg_dump_rows(estate, estate.source_endpoint(table.service), *table.source_ident)
        target = pg_dump_rows(estate, estate.target_endpoint(), *table.target_ident)
        assert source[0] == target[0], f"{table.qualified}: columns differ"
        assert source[1] == target[1], f"{table.qualified}: pg_dump rows differ"


def verify_across_timezone_and_datestyle_fails_naming_the_table_on_one_changed_value(baselined, manifest, airflow_home, env):
    estate = baselined
    settings = [source_sql(estate, "issuer", "SELECT current_setting('TimeZone'), current_setting('DateStyle')")[0],
                target_sql(estate, "SELECT current_setting('TimeZone'), current_setting('DateStyle')")[0]]
    assert settings[0][0] != settings[1][0], settings
    changed = "issuer.verification_logs"
    key = target_sql(estate, "SELECT min(id::text) FROM issuer.verification_logs")[0][0]
    target_sql(estate, """UPDATE issuer.verification_logs SET "timestamp" = "timestamp" + interval '1 microsecond' WHERE id::text = %s""", (key,))
    try:
        result = run_verify(airflow_home, env)
        assert result.returncode != 0
        assert result.state_of("check_verified") == "failed", result.task_states
        assert f"tables: {changed}" in result.output
        latest = max(Path(env["MIGRATION_ARTIFACT_DIR"], "verify").glob("*/verification.json"), key=lambda p: p.stat().st_mtime)
        report = json.loads(latest.read_text())
        assert not report["ok"] and report["failed_tables"] == [changed]
        html = latest.with_name("verification.html").read_text()
        assert "Verification FAILED" in html and f'<tr class="fail"><td>{changed}</td>' in html
    finally:
        target_sql(estate, """UPDATE issuer.verification_logs SET "timestamp" = "timestamp" - interval '1 microsecond' WHERE id::text = %s""", (key,))
    assert verified(estate, manifest)["ok"]


def test_one_migrations_life_in_order(preflighted, manifest, airflow_home, env, tmp_path):
    """The steps above, in the order a migration meets them: each starts from what the one before left
    (the ledger's phase, the chunk ledger, the runs in the metadata DB), so they are one test, whatever
    order the suite runs in."""
    backfill_before_schema_baseline_is_refused(preflighted, manifest, airflow_home, env)
    baselined = run_schema_baseline(preflighted, airflow_home, env)
    chunk_killed_mid_copy_then_cleared_and_rerun_loses_and_duplicates_nothing(baselined, manifest, airflow_home, env, tmp_path)
    whole_run_cleared_and_rerun_copies_nothing_twice(baselined, manifest, airflow_home, env)
    resync_of_stale_and_extra_rows_converges_to_the_source(baselined, manifest, airflow_home, env)
    insert_without_an_id_succeeds_in_every_serial_table(baselined, manifest)
    backfill_then_verify_pass_and_pg_dump_finds_no_difference(baselined, manifest, airflow_home, env)
    verify_across_timezone_and_datestyle_fails_naming_the_table_on_one_changed_value(baselined, manifest, airflow_home, env)
