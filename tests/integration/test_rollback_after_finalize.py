"""Finalize, rollback and the way back to a soak, through DAG runs on throwaway servers.

- A finalize run waiting for its approval while a rollback runs: once approved,
  it refuses at its fence claim naming `rolled_back`, and leaves dual-write on
  and the sources writable for the apps (finalize cannot run while a rollback can).
- After a rollback the hourly reconcile (source → target) starts a new soak
  with its first clean run, and a second cutover follows.
- Finalize runs its own final reconcile (target → source: a write the target
  alone holds reaches the source) and turns dual-write off.
- Within the retention window a rollback from `finalized` restores the apps'
  writes on the sources, turns dual-write on, catches the sources up from the
  target and flips the read path back.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from uuid import uuid4

import psycopg
import pytest

from migration_engine.local.servers import wait_until
from migration_engine.reconcile.engine import Direction
from migration_engine.resources import PROJECT_ROOT
from tests.integration.lifecycle_support import (
    failed,
    flags,
    phase,
    reconcile_clean,
    target,
)

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

GATES = {"min_clean_reconciles": 1, "dry_run": False}


@pytest.fixture
def cut_over_and_reconciled(soaking, estate, manifest, run):
    """A cutover by the DAG, then a clean reverse (target -> source) reconcile."""
    cut_over(run, estate)
    reconcile_clean(estate, manifest, f"reverse-{uuid4().hex[:8]}", Direction.TARGET_TO_SOURCE)


@pytest.fixture
def finalized(cut_over_and_reconciled, estate, run):
    done = run("finalize", {"confirm": "FINALIZE", "min_cutover_hours": 0, **GATES})
    assert done.succeeded, done.output[-3000:]
    assert phase(estate) == "finalized"


def cut_over(run, estate) -> None:
    cut = run("cutover", {"confirm": "CUTOVER", "min_soak_hours": 0, **GATES})
    assert cut.succeeded, cut.output[-3000:]
    assert phase(estate) == "cut_over"


def source_count(estate, service: str, query: str, params=()) -> int:
    with estate.source_endpoint(service).connect() as conn:
        return conn.execute(query, params).fetchone()[0]


def app_can_write(estate, service: str = "wallet") -> bool:
    with psycopg.connect(estate.app_url(service)) as conn:
        return conn.execute("SELECT has_table_privilege(current_user, 'public.activities', 'INSERT')").fetchone()[0]


def test_finalize_overtaken_by_a_rollback_refuses_at_its_fence(soaking, estate, manifest, run, airflow_home):
    cut_over(run, estate)
    reconcile_clean(estate, manifest, "reverse-0", Direction.TARGET_TO_SOURCE)
    outcome = {}
    waiting = threading.Thread(target=lambda: outcome.update(result=run(
        "finalize", {"confirm": "FINALIZE", "min_cutover_hours": 0, **GATES}, approval=None)))
    waiting.start()
    try:
        assert wait_until(lambda: airflow_home._awaiting_input("finalize"), timeout=900, interval=1), \
            "finalize never reached its approval"
        rolled = run("rollback", {"confirm": "ROLLBACK", "dry_run": False})
        assert rolled.succeeded, rolled.output[-3000:]
        assert phase(estate) == "rolled_back"
    finally:
        answer = subprocess.run([sys.executable, "-m", "migration_engine.local.approvals", "finalize", "Approve"],
                                env={**airflow_home.env, **estate.airflow_env()}, cwd=PROJECT_ROOT,
                                capture_output=True, text=True, timeout=300)
        waiting.join(timeout=900)
    assert answer.returncode == 0, answer.stderr[-2000:]
    result = outcome["result"]
    failed(result, "claim_fence", "finalize taking the fence refused", "the ledger says rolled_back")
    assert result.state_of("revoke_source_app_writes") != "success", result.task_states
    assert phase(estate) == "rolled_back"
    assert all(f["primary_side"] == "source" and f["dual_write"] for f in flags(estate, manifest).values())
    assert app_can_write(estate)


def test_after_a_rollback_the_hourly_reconcile_starts_a_new_soak(rolled_back, estate, run):
    hourly = run("reconcile", {"grace_seconds": 0})
    assert hourly.succeeded, hourly.output[-3000:]
    assert phase(estate) == "soak"
    cut_over(run, estate)


def test_finalize_reconciles_to_the_source_and_turns_dual_write_off(cut_over_and_reconciled, estate, manifest, run):
    # A write the apps made on the target whose dual-write to the source was lost.
    with target(estate) as conn:
        conn.execute("INSERT INTO recruiter.users (id, username, password) VALUES ('lost-on-source', 'l', 'x')")
    done = run("finalize", {"confirm": "FINALIZE", "min_cutover_hours": 0, **GATES})
    assert done.succeeded, done.output[-3000:]
    assert phase(estate) == "finalized"
    assert source_count(estate, "recruiter", "SELECT count(*) FROM public.users WHERE id = 'lost-on-source'") == 1
    assert not any(f["dual_write"] for f in flags(estate, manifest).values())
    assert not app_can_write(estate)


def test_a_rollback_within_the_retention_window_brings_the_apps_back(finalized, estate, manifest, run):
    # Dual-write is off: this write reaches the source only through the rollback's catch-up.
    with target(estate) as conn:
        conn.execute("INSERT INTO recruiter.users (id, username, password) VALUES ('after-finalize', 'f', 'x')")
    rolled = run("rollback", {"confirm": "ROLLBACK", "dry_run": False})
    assert rolled.succeeded, rolled.output[-3000:]
    assert phase(estate) == "rolled_back"
    assert all(f["primary_side"] == "source" and f["dual_write"] for f in flags(estate, manifest).values())
    assert app_can_write(estate)
    assert source_count(estate, "recruiter", "SELECT count(*) FROM public.users WHERE id = 'after-finalize'") == 1
