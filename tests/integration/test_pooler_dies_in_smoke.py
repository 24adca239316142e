"""The pooler dies after the cutover's gates passed: while its smoke checks run,
or before they can even connect.

A smoke query that sleeps holds the checks open; the pooler is stopped during
that sleep. In the second case a lock on the flag store holds the read-path flip,
and the pooler is stopped before it is let go, so every smoke connection is
refused. Either way the cutover must not end on the target: the smoke checks fail,
the read path goes back to the source and the ledger records rolled_back. A flip
that fails itself (the flag store locked against writes) leaves the ledger at
flip_unknown, where no reconcile writes and rollback is accepted.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from migration_engine.local.servers import wait_until
from migration_engine.reconcile.engine import Direction
from tests.integration.lifecycle_support import (
    CONTROL,
    failed,
    flags,
    manifest_with_smoke_check,
    phase,
    reconcile_clean,
    set_phase,
)

pytestmark = [pytest.mark.integration, pytest.mark.airflow]


@pytest.fixture(scope="module")
def migration_scale() -> float:
    return 0.1


def into_soak(estate, manifest, run, run_id: str) -> None:
    """To soak with the read path on the source from wherever the previous test left the ledger (verified,
    rolled_back or flip_unknown after a rollback): each test starts there, in any order."""
    if phase(estate) == "verified":
        dual = run("dual_write", {"confirm": "DUAL_WRITE", "dry_run": False})
        assert dual.succeeded, dual.output[-3000:]
    if phase(estate) != "soak":
        set_phase(estate, "soak")
    reconcile_clean(estate, manifest, run_id, Direction.SOURCE_TO_TARGET)
    assert {f["primary_side"] for f in flags(estate, manifest).values()} == {"source"}


def slow_smoke_manifest(manifest, tmp_path):
    return manifest_with_smoke_check(manifest, tmp_path, "recruiter", "zz_hold_open.sql", "SELECT pg_sleep(4)")


def test_pooler_stopped_during_smoke_checks_rolls_back_to_the_source(migrated, estate, manifest, run, tmp_path):
    into_soak(estate, manifest, run, "soak-0")
    slow = slow_smoke_manifest(manifest, tmp_path)

    def smoke_sleeping() -> bool:
        with estate.target_endpoint().connect(autocommit=True) as conn:
            return bool(conn.execute("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(4)%'").fetchall())

    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(result=run(
        "cutover", {"confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 0, "min_clean_reconciles": 1},
        env={"MIGRATION_MANIFEST": str(slow)})))
    thread.start()
    try:
        assert wait_until(smoke_sleeping, timeout=600, interval=0.1), "the smoke checks never reached the held query"
        estate.pooler.stop()
    finally:
        thread.join(timeout=900)
        estate.pooler.start()
    result = outcome["result"]
    assert result.state_of("wait_for_target_reachable") == "success", result.task_states
    failed(result, "fail_after_rollback", "cutover rolled back")
    assert result.state_of("roll_back_read_path") == "success"
    assert result.state_of("record_cut_over") == "skipped"
    assert phase(estate) == "rolled_back"
    assert {f["primary_side"] for f in flags(estate, manifest).values()} == {"source"}


def test_pooler_down_when_the_smoke_checks_connect_rolls_back_to_the_source(migrated, estate, manifest, run):
    into_soak(estate, manifest, run, "soak-1")

    def flip_waiting_on_the_lock() -> bool:
        with estate.target_endpoint().connect(autocommit=True) as conn:
            return bool(conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                (f"%{CONTROL}%read_path%",)).fetchall())

    outcome = {}
    holder = psycopg.connect(estate.target_endpoint().conninfo)
    holder.execute(f"LOCK TABLE {CONTROL}.read_path IN ACCESS EXCLUSIVE MODE")
    thread = threading.Thread(target=lambda: outcome.update(result=run(
        "cutover", {"confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 0, "min_clean_reconciles": 1},
        env={"DB_LOCK_TIMEOUT_MS": "600000"})))
    thread.start()
    try:
        assert wait_until(flip_waiting_on_the_lock, timeout=600, interval=0.2), "the flip never reached the flag store"
        estate.pooler.stop()
        holder.rollback()
    finally:
        holder.close()
        thread.join(timeout=900)
        estate.pooler.start()
    result = outcome["result"]
    assert result.state_of("wait_for_target_reachable") == "success", result.task_states
    assert result.state_of("flip_read_path_to_target") == "success", result.task_states
    assert result.state_of("run_smoke_checks") == "success", result.task_states
    assert "cannot connect to target (pooler)" in result.output
    failed(result, "fail_after_rollback", "cutover rolled back")
    assert result.state_of("roll_back_read_path") == "success"
    assert result.state_of("record_cut_over") == "skipped"
    assert phase(estate) == "rolled_back"
    assert {f["primary_side"] for f in flags(estate, manifest).values()} == {"source"}
    # The flip succeeded, so the unknown-outcome step had nothing to do.
    assert result.state_of("record_flip_outcome_unknown") == "skipped", result.task_states


def test_a_flip_that_fails_after_it_started_leaves_flip_unknown_which_rollback_accepts(migrated, estate, manifest,
                                                                                        run):
    """The flag store is locked against writes, so every try of the flip times out: from the DAG's side the flip
    started and failed, and whether it committed cannot be told by its error."""
    into_soak(estate, manifest, run, "soak-2")
    holder = psycopg.connect(estate.target_endpoint().conninfo)
    holder.execute(f"LOCK TABLE {CONTROL}.read_path IN EXCLUSIVE MODE")
    try:
        result = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 0, "min_clean_reconciles": 1},
                     env={"DB_LOCK_TIMEOUT_MS": "1500"})
    finally:
        holder.close()
    assert result.state_of("flip_read_path_to_target") == "failed", result.task_states
    failed(result, "record_flip_outcome_unknown", "may have committed")
    assert "The ledger says flip_unknown" in result.output
    assert result.state_of("run_smoke_checks") == "upstream_failed", result.task_states
    assert phase(estate) == "flip_unknown"
    # With no known primary, reconciliation writes nothing in either direction.
    skipped = run("reconcile")
    assert skipped.state_of("check_ledger_phase") == "success" and skipped.state_of("reconcile_tables") == "skipped", \
        skipped.task_states
    rolled_back = run("rollback", {"confirm": "ROLLBACK", "dry_run": False})
    assert rolled_back.succeeded, rolled_back.output[-4000:]
    assert phase(estate) == "rolled_back"
    assert {f["primary_side"] for f in flags(estate, manifest).values()} == {"source"}
