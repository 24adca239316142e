"""Dual-write, cutover, rollback and finalize through Airflow, on throwaway servers.

The estate is brought to the soak phase once per module with the engine
(layout, data, copy, constraints, fingerprints, ledger, clean reconciles); each
test then drives the DAGs with ``airflow dags test`` and checks the databases.
"""

from __future__ import annotations

import shutil
import time

import pytest
import yaml
from psycopg import sql

from migration_engine import ledger, read_path
from migration_engine.canonical import hash_sum, pin_output_settings
from migration_engine.chunks import plan_all
from migration_engine.copier import copy_chunk
from migration_engine.generator import generate
from migration_engine.manifest import DEFAULT_MANIFEST, load_manifest
from migration_engine.preflight import freeze_fingerprint
from migration_engine.reconcile.engine import Direction, reconcile_table
from migration_engine.schema_sql import apply_step, create_source_layout
from migration_engine.sequences import sync_sequences

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

CONTROL = "migration_control"


def _target(estate):
    return estate.target_endpoint().connect(autocommit=True)


def _sources(estate, manifest):
    return {s.name: estate.source_endpoint(s.name) for s in manifest.services}


def _reconcile_clean(estate, manifest, run_id: str, direction=Direction.SOURCE_TO_TARGET) -> None:
    for table in manifest.tables:
        result = reconcile_table(
            table, estate.source_endpoint(table.service), estate.target_endpoint(),
            run_id=run_id, direction=direction, control_schema=CONTROL, grace_seconds=0,
        )
        assert result.unrepaired == 0, result.summary()


def _set_phase(estate, *phases: str) -> None:
    with _target(estate) as conn:
        for phase in phases:
            ledger.advance(conn, CONTROL, phase, "test", "setup")


@pytest.fixture(scope="module")
def soaking(estate, manifest):
    """The estate after backfill, verification, dual-write on and three clean reconciles: phase soak."""
    sources = _sources(estate, manifest)
    create_source_layout(manifest, sources)
    generate(manifest, sources, scale=0.2, seed=7)
    with _target(estate) as conn:
        for step in manifest.schema_steps:
            if not step.after_backfill:
                apply_step(lambda _s: conn, manifest, step.name, "target")
    for chunk in plan_all(manifest, sources):
        copy_chunk(sources[manifest.table(chunk.table).service], estate.target_endpoint(), manifest, chunk)
    with _target(estate) as conn:
        apply_step(lambda _s: conn, manifest, "post_load_constraints", "target")
        ledger.ensure_ledger(conn, CONTROL)
        for service in manifest.services:
            with sources[service.name].connect(autocommit=True) as src:
                freeze_fingerprint(src, conn, manifest, service.name, "test", "setup")
    sync_sequences(sources, estate.target_endpoint(), manifest)
    _set_phase(estate, "preflight_passed", "schema_applied", "backfilled", "verified")
    return sources


@pytest.fixture
def run(airflow_home, estate):
    def run_dag(dag_id: str, conf: dict | None = None, **env):
        return airflow_home.run_dag(dag_id, conf, extra_env={**estate.airflow_env(), **env})

    return run_dag


def _phase(estate) -> str | None:
    with _target(estate) as conn:
        return ledger.current_phase(conn, CONTROL)


def _flags(estate, manifest) -> dict:
    with _target(estate) as conn:
        return read_path.read_flags(conn, manifest)


def _snapshot(estate, manifest) -> dict:
    """Catalog and data of every schema on both servers: rows and an order-independent hash per table."""
    snapshot = {}
    endpoints = [("target", estate.target_endpoint())] + [(f"source {s.name}", estate.source_endpoint(s.name)) for s in manifest.services]
    for side, endpoint in endpoints:
        with endpoint.connect() as conn:
            tables = conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
            ).fetchall()
            pin_output_settings(conn)
            for schema, table in tables:
                columns = [r[0] for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                    "ORDER BY ordinal_position", (schema, table)).fetchall()]
                digest = conn.execute(
                    sql.SQL("SELECT count(*), {} FROM {} AS t").format(hash_sum(columns), sql.Identifier(schema, table))
                ).fetchone()
                snapshot[(side, schema, table)] = (columns, digest)
            snapshot[(side, "grants")] = conn.execute(
                "SELECT grantee, table_schema, table_name, privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee NOT IN ('postgres', 'migrator') ORDER BY 1, 2, 3, 4").fetchall()
        pass
    return snapshot


def _failed(result, task_id: str, *phrases: str) -> None:
    assert result.returncode != 0, result.output[-3000:]
    assert result.state_of(task_id) == "failed", result.task_states
    for phrase in phrases:
        assert phrase in result.output, f"{phrase!r} not in the output of {task_id}"


def test_dual_write_dry_run_then_real_run_opens_the_window(soaking, estate, manifest, run):
    dry = run("dual_write", {"confirm": "DUAL_WRITE"})
    assert dry.succeeded, dry.output[-3000:]
    assert _phase(estate) == "verified"
    assert not any(f["dual_write"] for f in _flags(estate, manifest).values())
    real = run("dual_write", {"confirm": "DUAL_WRITE", "dry_run": False})
    assert real.succeeded, real.output[-3000:]
    assert _phase(estate) == "dual_write"
    flags = _flags(estate, manifest)
    assert set(flags) == {"wallet", "issuer", "recruiter"}
    assert all(f["dual_write"] and f["primary_side"] == "source" for f in flags.values())
    for attempt in range(3):
        _reconcile_clean(estate, manifest, f"soak-{attempt}")
    _set_phase(estate, "soak")


@pytest.mark.parametrize("confirm", [None, "cutover", "CUTOVER ", "x'; DROP TABLE wallet.users; --"])
def test_cutover_without_the_exact_confirm_word_refuses_before_touching_a_database(soaking, estate, manifest, run, confirm):
    result = run("cutover", {"confirm": confirm, "dry_run": False})
    _failed(result, "check_confirmation", "the confirm parameter must be exactly 'CUTOVER'")
    assert result.state_of("check_ledger_phase") in ("upstream_failed", None)
    assert _phase(estate) == "soak"


def test_cutover_dry_run_changes_nothing_in_either_database(soaking, estate, manifest, run):
    before = _snapshot(estate, manifest)
    result = run("cutover", {"confirm": "CUTOVER", "min_soak_hours": 0})
    assert result.succeeded, result.output[-3000:]
    assert "DRY RUN, not executed" in result.output
    assert "set_read_path.sql" in result.output
    assert _snapshot(estate, manifest) == before
    assert _phase(estate) == "soak"


def test_cutover_refuses_when_the_soak_is_too_short(soaking, estate, run):
    result = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 48})
    _failed(result, "check_soak_elapsed", "at least 48 h are required")
    assert _phase(estate) == "soak"


def test_cutover_refuses_after_a_dirty_reconcile(soaking, estate, manifest, run):
    with estate.source_endpoint("recruiter").connect(autocommit=True) as conn:
        conn.execute("INSERT INTO public.users (username, password) VALUES ('drifted-user', 'x')")
    table = manifest.table("recruiter.users")
    dirty = reconcile_table(table, estate.source_endpoint("recruiter"), estate.target_endpoint(), run_id="dirty",
                            direction=Direction.SOURCE_TO_TARGET, control_schema=CONTROL, cap=0, grace_seconds=0)
    assert dirty.cap_exceeded
    result = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 0, "min_clean_reconciles": 1})
    _failed(result, "check_recent_reconciles_clean", "must be clean")
    _reconcile_clean(estate, manifest, "clean-again")


def test_cutover_refuses_a_changed_source_schema(soaking, estate, run):
    with estate.source_endpoint("wallet").connect(autocommit=True) as conn:
        conn.execute("ALTER TABLE public.users ADD COLUMN nickname text")
    try:
        result = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 0, "min_clean_reconciles": 1})
        _failed(result, "check_source_schema_unchanged", "wallet source schema changed since preflight", "nickname")
    finally:
        with estate.source_endpoint("wallet").connect(autocommit=True) as conn:
            conn.execute("ALTER TABLE public.users DROP COLUMN nickname")
    assert _phase(estate) == "soak"


def test_cutover_refuses_while_the_pooler_is_down(soaking, estate, run):
    estate.pooler.stop()
    try:
        result = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 0, "min_clean_reconciles": 1})
    finally:
        estate.pooler.start()
    assert result.returncode != 0
    assert result.state_of("wait_for_target_reachable") == "failed", result.task_states
    assert "target (pooler)" in result.output
    assert _phase(estate) == "soak"


def test_failed_smoke_check_rolls_back_to_the_source(soaking, estate, manifest, run, tmp_path):
    smoke = tmp_path / "smoke"
    shutil.copytree(manifest.smoke_sql, smoke)
    (smoke / "issuer" / "fail_on_purpose.sql").write_text("SELECT 1 / (SELECT count(*) - count(*) FROM {{ schema }}.tenants)\n")
    raw = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    raw["smoke_sql"] = str(smoke)
    broken = tmp_path / "manifest.yaml"
    broken.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert load_manifest(broken).smoke_sql == smoke

    result = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 0, "min_clean_reconciles": 1},
                 MIGRATION_MANIFEST=str(broken))
    _failed(result, "fail_after_rollback", "cutover rolled back", "fail_on_purpose.sql")
    assert result.state_of("roll_back_read_path") == "success"
    assert result.state_of("record_cut_over") == "skipped"
    assert _phase(estate) == "rolled_back"
    assert {f["primary_side"] for f in _flags(estate, manifest).values()} == {"source"}
    _set_phase(estate, "soak")


def test_cutover_flips_the_read_path_then_rollback_brings_it_back(soaking, estate, manifest, run):
    result = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 0, "min_clean_reconciles": 1})
    assert result.succeeded, result.output[-3000:]
    assert _phase(estate) == "cut_over"
    flags = _flags(estate, manifest)
    assert all(f["primary_side"] == "target" and f["dual_write"] for f in flags.values())

    # A write the apps made on the target after cutover, which the source lacks.
    with _target(estate) as conn:
        conn.execute("INSERT INTO recruiter.users (username, password) VALUES ('after-cutover', 'x')")
    started = time.monotonic()
    rolled = run("rollback", {"confirm": "ROLLBACK"})
    seconds = time.monotonic() - started
    print(f"rollback took {seconds:.1f}s (runbook target: under 15 minutes)")
    assert rolled.succeeded, rolled.output[-3000:]
    assert seconds < 15 * 60
    assert _phase(estate) == "rolled_back"
    assert all(f["primary_side"] == "source" and f["dual_write"] for f in _flags(estate, manifest).values())
    assert "'missing_in_target': 0" in rolled.output or "extra_in_target" in rolled.output
    with estate.source_endpoint("recruiter").connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.users WHERE username = 'after-cutover'").fetchone()[0] == 0

    repaired = run("rollback", {"confirm": "ROLLBACK", "repair_source": "REPAIR_SOURCE"})
    assert repaired.succeeded, repaired.output[-3000:]
    with estate.source_endpoint("recruiter").connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.users WHERE username = 'after-cutover'").fetchone()[0] == 1


def test_finalize_makes_the_source_read_only_for_the_apps(soaking, estate, manifest, run):
    import psycopg

    _set_phase(estate, "soak")
    cut = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 0, "min_clean_reconciles": 1})
    assert cut.succeeded, cut.output[-3000:]
    _reconcile_clean(estate, manifest, "after-cutover", Direction.TARGET_TO_SOURCE)
    refused = run("finalize", {"confirm": "FINALIZE", "dry_run": False, "min_clean_reconciles": 1})
    _failed(refused, "check_cutover_soak", "at least 24 h are required")

    done = run("finalize", {"confirm": "FINALIZE", "dry_run": False, "min_cutover_hours": 0, "min_clean_reconciles": 1})
    assert done.succeeded, done.output[-3000:]
    assert _phase(estate) == "finalized"
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with psycopg.connect(estate.app_url("wallet")) as conn:
            conn.execute("INSERT INTO public.activities (user_id, type, description) VALUES (1, 't', 'd')")
    with psycopg.connect(estate.app_url("wallet")) as conn:
        assert conn.execute("SELECT count(*) FROM public.activities").fetchone()[0] > 0
    with estate.source_endpoint("wallet").connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.users").fetchone()[0] > 0
    with _target(estate) as conn:
        fact = ledger.read_fact(conn, CONTROL, "rollback_retention")
    assert fact.value["retention_days"] == 7
