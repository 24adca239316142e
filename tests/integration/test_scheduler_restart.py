"""The Airflow scheduler killed and started again while the backfill DAG runs.

A real Airflow (api-server, dag-processor, scheduler with the LocalExecutor) runs
the backfill DAG as the UI would trigger it. While a target trigger holds one
chunk's COPY mid-stream, the scheduler is SIGKILLed together with every process
it started, the chunk's task among them, as a crashed scheduler host would leave
things. Started again, the scheduler finds the task that no longer heartbeats,
fails it into its retry, and the run completes; the verify DAG its Asset
schedules then passes, no key is duplicated and every chunk is recorded once.

Airflow's own timeouts are shortened here so that the dead task is noticed within
the test; with the defaults, a deployment notices it after five minutes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from migration_engine.local.cluster import AirflowCluster
from migration_engine.local.servers import wait_until
from tests.integration.backfill_support import source_sql
from tests.integration.lifecycle_support import phase
from tests.integration.test_backfill_dag import backends, chunk_ledger, metadata_rows, remove_slow_down, slow_down
from tests.integration.test_server_restarts import CHUNK_ROWS, SLOW_TABLE, assert_converged

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

REPO_DAGS = Path(__file__).resolve().parents[2] / "dags"
HEARTBEAT_TIMEOUTS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "10",
    "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "5",
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, schema_applied):
    estate = schema_applied
    running = AirflowCluster(
        home=tmp_path_factory.mktemp("scheduler_home"), dags_folder=REPO_DAGS, executor="LocalExecutor", workers=0,
        extra_env={**estate.airflow_env(), "DB_POOL_MAX": "4", "AIRFLOW__CORE__PARALLELISM": "4",
                   "MIGRATION_ARTIFACT_DIR": str(tmp_path_factory.mktemp("artifacts")), **HEARTBEAT_TIMEOUTS},
    )
    try:
        running.start(f"pgmig_scheduler_test_{os.getpid()}")
        yield running
    finally:
        running.stop()


def copy_chunk_tries(cluster, run_id: str) -> dict[int, int]:
    rows = metadata_rows(cluster.airflow, "SELECT map_index, try_number FROM task_instance WHERE dag_id = 'backfill' "
                         "AND task_id = 'copy_chunk' AND run_id = %s", (run_id,))
    return dict(rows)


def test_scheduler_killed_mid_backfill_and_started_again_completes_the_run(cluster, schema_applied, manifest):
    estate = schema_applied
    stuck = source_sql(estate, "wallet", "SELECT percentile_disc(0.6) WITHIN GROUP (ORDER BY id) FROM activities")[0][0]
    # Long enough for the kill to land inside it; PostgreSQL notices the dead client once the sleep ends.
    slow_down(estate, SLOW_TABLE, stuck, seconds=20)
    run_id = cluster.trigger("backfill", conf=json.dumps({"target_chunk_rows": CHUNK_ROWS}))
    assert wait_until(lambda: bool(backends(estate, "PgSleep")), timeout=600, interval=0.5), "no chunk was held"
    recorded_before = len(chunk_ledger(estate))
    cluster.kill("scheduler")
    # The held chunk died with the scheduler: its connection closes and its transaction rolls back.
    assert wait_until(lambda: not backends(estate), timeout=60, interval=0.5), backends(estate)
    remove_slow_down(estate, SLOW_TABLE)
    interrupted = copy_chunk_tries(cluster, run_id)
    cluster.restart("scheduler")

    assert cluster.wait_for_run("backfill", run_id, timeout=900) == "success"
    retried = {index: tries for index, tries in copy_chunk_tries(cluster, run_id).items() if tries > interrupted.get(index, 0)}
    assert any(interrupted.get(index, 0) >= 1 for index in retried), (
        f"no chunk that had started before the kill ran again: {interrupted} -> {copy_chunk_tries(cluster, run_id)}")
    assert len(chunk_ledger(estate)) > recorded_before, "the run did not go on after the restart"
    assert_converged(estate, manifest)

    verify_run = wait_until(lambda: metadata_rows(
        cluster.airflow, "SELECT run_id, state FROM dag_run WHERE dag_id = 'verify' AND state IN ('success', 'failed')"),
        timeout=600, interval=2)
    assert verify_run, "the backfill's Asset did not schedule the verify DAG"
    assert [state for _run, state in metadata_rows(cluster.airflow, "SELECT run_id, state FROM dag_run WHERE dag_id = 'verify'")] == ["success"]
    assert phase(estate) == "verified"
