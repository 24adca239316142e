"""The cutover DAG through Airflow, on throwaway servers: its refusals (confirm word, soak time,
a dirty reconcile, a changed source schema, the pooler down), its dry run, a failed smoke check
that rolls back, and a real flip that the rollback DAG brings back.

The data is migrated once per module with the engine (layout, data, copy,
constraints, fingerprints); before each test a fixture (``verified``, ``soaking``)
brings the ledger, the flags and the apps' grants to the phase that test starts
from, so the tests drive the DAG with ``airflow dags test`` in any order.
"""

from __future__ import annotations

import pytest

from tests.integration.lifecycle_support import (
    failed,
    flags,
    manifest_with_smoke_check,
    phase,
    reconcile_every_table,
    snapshot,
    target,
)

pytestmark = [pytest.mark.integration, pytest.mark.airflow]


# Which words refuse is unit-tested (tests/unit/test_confirm_word.py); here, that the DAG asks first.
def test_cutover_without_the_exact_confirm_word_refuses_before_touching_a_database(soaking, estate, manifest, run):
    result = run("cutover", {"confirm": "x'; DROP TABLE wallet.users; --", "dry_run": False})
    failed(result, "check_confirmation", "the confirm parameter must be exactly 'CUTOVER'")
    assert result.state_of("check_ledger_phase") in ("upstream_failed", None)
    assert phase(estate) == "soak"


def test_cutover_dry_run_changes_nothing_in_either_database(soaking, estate, manifest, run):
    before = snapshot(estate, manifest)
    result = run("cutover", {"confirm": "CUTOVER", "min_soak_hours": 0, "min_clean_reconciles": 1})
    assert result.succeeded, result.output[-3000:]
    assert "DRY RUN, not executed" in result.output
    assert "set_read_path.sql" in result.output
    assert snapshot(estate, manifest) == before
    assert phase(estate) == "soak"


def test_cutover_refuses_when_the_soak_is_too_short(soaking, estate, run):
    # One clean reconcile, all `soaking` records: the streak gate passes, so the soak's length alone refuses.
    result = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "app_switch_seconds": 0, "min_soak_hours": 48,
                             "min_clean_reconciles": 1})
    failed(result, "wait_for_soak_elapsed", "at least 48 h are required", "more than this run may still wait")
    assert phase(estate) == "soak"


def test_cutover_refuses_after_a_dirty_reconcile(soaking, estate, manifest, run):
    with estate.source_endpoint("recruiter").connect(autocommit=True) as conn:
        conn.execute("INSERT INTO public.users (username, password) VALUES ('drifted-user', 'x')")
    dirty = reconcile_every_table(estate, manifest, "dirty", cap=0)
    assert [name for name, r in dirty.items() if r.cap_exceeded] == ["recruiter.users"]
    result = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "app_switch_seconds": 0, "min_soak_hours": 0, "min_clean_reconciles": 1,
                             "gate_wait_hours": 0})
    failed(result, "wait_for_clean_reconciles", "must be clean", "may wait no longer")
    assert phase(estate) == "soak"


def test_cutover_refuses_a_changed_source_schema(soaking, estate, run):
    with estate.source_endpoint("wallet").connect(autocommit=True) as conn:
        conn.execute("ALTER TABLE public.users ADD COLUMN nickname text")
    try:
        result = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "app_switch_seconds": 0, "min_soak_hours": 0, "min_clean_reconciles": 1})
        failed(result, "check_source_schema_unchanged", "wallet source schema changed since preflight", "nickname")
    finally:
        with estate.source_endpoint("wallet").connect(autocommit=True) as conn:
            conn.execute("ALTER TABLE public.users DROP COLUMN nickname")
    assert phase(estate) == "soak"


def test_cutover_refuses_while_the_pooler_is_down(soaking, estate, run):
    estate.pooler.stop()
    try:
        result = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "app_switch_seconds": 0, "min_soak_hours": 0,
                                 "min_clean_reconciles": 1, "reachable_wait_seconds": 12})
    finally:
        estate.pooler.start()
    assert result.returncode != 0
    assert result.state_of("wait_for_target_reachable") == "failed", result.task_states
    assert "target (pooler)" in result.output and "waited 12 s (reachable_wait_seconds)" in result.output
    assert phase(estate) == "soak"


def test_failed_smoke_check_rolls_back_to_the_source(soaking, estate, manifest, run, tmp_path):
    broken = manifest_with_smoke_check(manifest, tmp_path, "issuer", "fail_on_purpose.sql",
                                       "SELECT 1 / (SELECT count(*) - count(*) FROM {{ schema | ident }}.tenants)")

    result = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "app_switch_seconds": 0, "min_soak_hours": 0, "min_clean_reconciles": 1},
                 env={"MIGRATION_MANIFEST": str(broken)})
    failed(result, "fail_after_rollback", "cutover rolled back", "fail_on_purpose.sql")
    assert result.state_of("roll_back_read_path") == "success"
    assert result.state_of("record_cut_over") == "skipped"
    assert phase(estate) == "rolled_back"
    assert {f["primary_side"] for f in flags(estate, manifest).values()} == {"source"}


def test_cutover_flips_the_read_path_then_rollback_brings_it_back(soaking, estate, manifest, run):
    result = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "app_switch_seconds": 0, "min_soak_hours": 0, "min_clean_reconciles": 1})
    assert result.succeeded, result.output[-3000:]
    # Approved through Airflow's own response path, by a named user, after the evidence was gathered.
    assert "answered 'Approve' to cutover/" in result.output and "approve_cutover as migration-harness" in result.output
    # The drain after the flip is paced by the target's health, the apps' primary by then.
    assert "target: probe latency before any scan or copy" in result.output, result.output[-3000:]
    assert phase(estate) == "cut_over"
    assert all(f["primary_side"] == "target" and f["dual_write"] for f in flags(estate, manifest).values())

    # A write the apps made on the target after cutover, which the source lacks.
    with target(estate) as conn:
        conn.execute("INSERT INTO recruiter.users (username, password) VALUES ('after-cutover', 'x')")
    rolled = run("rollback", {"confirm": "ROLLBACK", "dry_run": False})
    assert rolled.succeeded, rolled.output[-3000:]
    assert phase(estate) == "rolled_back"
    assert all(f["primary_side"] == "source" and f["dual_write"] for f in flags(estate, manifest).values())
    # The reverse report names the target's row the source lacks; without repair_source nothing is written.
    assert "recruiter.users: first drifted keys:" in rolled.output and "(extra_in_target)" in rolled.output, \
        rolled.output[-3000:]
    with estate.source_endpoint("recruiter").connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.users WHERE username = 'after-cutover'").fetchone()[0] == 0

    repaired = run("rollback", {"confirm": "ROLLBACK", "dry_run": False, "repair_source": "REPAIR_SOURCE"})
    assert repaired.succeeded, repaired.output[-3000:]
    with estate.source_endpoint("recruiter").connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.users WHERE username = 'after-cutover'").fetchone()[0] == 1
