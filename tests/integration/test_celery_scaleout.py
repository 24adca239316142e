"""CeleryExecutor scale-out without Docker: scheduler, dag-processor, API server and two
Celery workers on this machine's PostgreSQL and Redis run the package's own backfill
DAG, unchanged, and its chunk copies land on both workers."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from migration_engine.env_contract import pools_from_env
from migration_engine.local.cluster import AirflowCluster
from migration_engine.verify import verify

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

REPO_DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, estate, schema_applied):
    running = AirflowCluster(
        home=tmp_path_factory.mktemp("celery_home"), dags_folder=REPO_DAGS, workers=2, concurrency=2,
        extra_env={**estate.airflow_env(), "DB_POOL_MAX": "4"},
    )
    try:
        running.start(f"pgmig_celery_test_{os.getpid()}")
        yield running
    finally:
        running.stop()


def test_backfill_chunks_spread_over_both_celery_workers(cluster, estate, manifest, sources):
    # About 70 chunks of the shared fixture's data, enough to keep both workers busy.
    run_id = cluster.trigger("backfill", conf=json.dumps({"target_chunk_rows": 100}))
    assert cluster.wait_for_run("backfill", run_id, timeout=900) == "success"
    rows = cluster.task_hosts("backfill", run_id)
    chunks = [row for row in rows if row[0] == "copy_chunk"]
    assert len(chunks) >= 8, chunks
    assert {row[2] for row in rows} <= {"success", "skipped"}
    assert {row[4] for row in rows} == {cluster.queue}
    per_worker = Counter(row[3] for row in chunks)
    assert set(per_worker) == {"worker1", "worker2"}, per_worker
    assert verify(sources, estate.target_endpoint(), manifest)["ok"]


def test_the_cluster_has_the_package_pools_sized_by_db_pool_max(cluster, manifest):
    pools = cluster.pools()
    pools.pop("default_pool")
    assert pools == pools_from_env(manifest, {"DB_POOL_MAX": "4"})
