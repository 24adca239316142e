"""The ledger's fence, on throwaway servers and real DAG runs: a run that started
in one phase and resumes after another run moved the ledger writes nothing.

- A reconcile run reads `soak` (source → target) and its table task is held by a
  lock on the table; meanwhile the cutover moves the read path and the ledger,
  and the apps write on the target, now their primary: a row the source lacks
  and a newer value. Once let go, the run must refuse naming `cut_over`, and
  leave both writes alone (before the fence it deleted the row and put the
  source's older value back).
- A cleared `flip_read_path_to_target` of an old cutover run, re-run after a
  rollback, refuses naming the current phase and flips nothing.
- While a transition holds the fence (claimed, the ledger not moved yet) no
  reconcile run starts.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

from migration_engine import ledger, read_path
from migration_engine.local.servers import wait_until
from tests.integration.lifecycle_support import (
    CONTROL,
    failed,
    flags,
    move_flags,
    phase,
    set_phase,
    target,
)

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

HELD_TABLE = "recruiter.users"


def cut_over_by_hand(estate, manifest, run_id: str) -> None:
    """What the cutover DAG does at its end: the read path to the target, then the ledger soak -> cut_over."""
    move_flags(estate, manifest, read_path.read_path_statements(manifest, "target", f"cutover/{run_id}"))
    with target(estate) as conn:
        epoch = ledger.current_epoch(conn, CONTROL).number
        assert ledger.advance(conn, CONTROL, "cut_over", "cutover", run_id, epoch=epoch)


def source_users(estate) -> dict:
    with estate.source_endpoint("recruiter").connect() as conn:
        return dict(conn.execute("SELECT id, password FROM public.users").fetchall())


def test_a_reconcile_started_in_soak_refuses_after_the_cutover_and_writes_nothing(soaking, estate, manifest, run,
                                                                                  airflow_home):
    source_before = source_users(estate)
    some_id = min(source_before)

    def held_on_the_lock() -> bool:
        with target(estate) as conn:
            return bool(conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name LIKE %s",
                ("credity-migration-reconcile%",)).fetchall())

    holder = psycopg.connect(estate.target_endpoint().conninfo)
    holder.execute("LOCK TABLE recruiter.users IN ACCESS EXCLUSIVE MODE")
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(result=run(
        "reconcile", {"tables": [HELD_TABLE], "grace_seconds": 0}, env={"DB_LOCK_TIMEOUT_MS": "600000"})))
    thread.start()
    try:
        assert wait_until(held_on_the_lock, timeout=600, interval=0.2), "the reconcile never reached the held table"
        cut_over_by_hand(estate, manifest, "cutover-during-reconcile")
        # The apps now write on the target, their primary: a row the source lacks and a newer value.
        holder.execute("INSERT INTO recruiter.users (id, username, password) VALUES ('after-cutover', 'new', 'x')")
        holder.execute("UPDATE recruiter.users SET password = 'newer on the target' WHERE id = %s", (some_id,))
        holder.commit()
    finally:
        holder.close()
        thread.join(timeout=900)
    result = outcome["result"]

    assert result.returncode != 0, result.output[-3000:]
    assert result.state_of("reconcile_tables[0]") == "failed", result.task_states
    assert "refused: this run started at ledger epoch" in result.output
    assert "the ledger says cut_over" in result.output
    with target(estate) as conn:
        assert conn.execute("SELECT count(*) FROM recruiter.users WHERE id = 'after-cutover'").fetchone()[0] == 1
        assert conn.execute("SELECT password FROM recruiter.users WHERE id = %s", (some_id,)).fetchone()[0] == \
            "newer on the target"
        recorded = conn.execute(f"SELECT count(*) FROM {CONTROL}.reconcile_runs WHERE run_id = %s",
                                (_last_run_id(airflow_home, "reconcile"),)).fetchone()[0]
    assert recorded == 0, "a stale run must not record itself in the drift ledger"
    assert source_users(estate) == source_before
    assert phase(estate) == "cut_over"
    assert {f["primary_side"] for f in flags(estate, manifest).values()} == {"target"}


def _last_run_id(airflow_home, dag_id: str) -> str:
    with psycopg.connect(airflow_home.metadata_db.replace("postgresql+psycopg2://", "postgresql://", 1)) as conn:
        return conn.execute("SELECT run_id FROM dag_run WHERE dag_id = %s ORDER BY id DESC LIMIT 1", (dag_id,)).fetchone()[0]


def test_a_cleared_flip_of_an_old_cutover_refuses_after_a_rollback(soaking, estate, manifest, run, airflow_home):
    cut = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 0, "min_clean_reconciles": 1})
    assert cut.succeeded, cut.output[-3000:]
    old_cutover = _last_run_id(airflow_home, "cutover")
    assert phase(estate) == "cut_over"

    # A rollback: the read path back on the source, the ledger at rolled_back.
    move_flags(estate, manifest, read_path.read_path_statements(manifest, "source", "rollback/test"))
    set_phase(estate, "rolled_back")

    cleared = airflow_home.airflow("tasks", "clear", "cutover", "--task-regex", "^flip_read_path_to_target$", "--yes",
                                   extra_env=estate.airflow_env())
    assert cleared.returncode == 0, cleared.stderr[-2000:]
    rerun = airflow_home.airflow("tasks", "test", "cutover", "flip_read_path_to_target", old_cutover,
                                 extra_env=estate.airflow_env(), check=False)
    output = rerun.stdout + rerun.stderr
    assert "DRY RUN" not in output, "the re-run must act as the old run did (dry_run off)"
    # Refused at its first write, the record that a flip starts: neither the record nor the flags changed.
    assert "recording the flip of the read path to the target refused" in output, output[-3000:]
    assert "the ledger says rolled_back" in output
    assert {f["primary_side"] for f in flags(estate, manifest).values()} == {"source"}
    assert phase(estate) == "rolled_back"


def test_no_reconcile_starts_while_a_transition_holds_the_fence(rolled_back, estate, manifest, run):
    with target(estate) as conn:
        epoch = ledger.current_epoch(conn, CONTROL).number
        ledger.claim(conn, CONTROL, epoch, "cutover", "transition-under-way", "a cutover between its claim and its move")
    held = run("reconcile", {"grace_seconds": 0})
    failed(held, "check_ledger_phase", "cutover/transition-under-way holds the ledger's fence")
    assert held.state_of("reconcile_tables[0]") in (None, "upstream_failed"), held.task_states
    # The claiming run's ledger move ends the transition: reconciliation runs again.
    set_phase(estate, "soak")
    freed = run("reconcile", {"grace_seconds": 0})
    assert freed.succeeded, freed.output[-3000:]
