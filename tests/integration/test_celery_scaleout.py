"""CeleryExecutor scale-out without Docker: scheduler, dag-processor, API server and two
Celery workers on this machine's PostgreSQL and Redis; mapped tasks land on both workers.

Until the backfill DAG can run here end to end, a small mapped DAG in a temporary DAG
folder proves the mechanism; scripts/celery_scaleout.py runs any DAG the same way.
"""

from __future__ import annotations

import os
import textwrap
from collections import Counter

import pytest
from migration_engine.env_contract import pools_from_env
from migration_engine.local.celery_cluster import CeleryCluster

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

MAPPED_DAG = textwrap.dedent('''
    """Eight mapped chunks that each take a moment, so two workers share them."""
    import os
    import time

    import pendulum
    from airflow.sdk import dag, task


    @dag(dag_id="scaleout_probe", schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
    def scaleout_probe():
        @task
        def plan_chunks():
            return list(range(8))

        @task
        def copy_chunk(chunk: int):
            time.sleep(3)
            return {"chunk": chunk, "worker": os.environ.get("MIGRATION_WORKER_NAME")}

        copy_chunk.expand(chunk=plan_chunks())


    scaleout_probe()
''')


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    dags = tmp_path_factory.mktemp("scaleout_dags")
    (dags / "scaleout_probe.py").write_text(MAPPED_DAG)
    running = CeleryCluster(home=tmp_path_factory.mktemp("celery_home"), dags_folder=dags, workers=2, concurrency=2,
                           extra_env={"DB_POOL_MAX": "4"})
    try:
        running.start(f"pgmig_celery_test_{os.getpid()}")
        yield running
    finally:
        running.stop()


def test_mapped_tasks_spread_over_both_celery_workers(cluster):
    run_id = cluster.trigger("scaleout_probe")
    assert cluster.wait_for_run("scaleout_probe", run_id) == "success"
    rows = cluster.task_hosts("scaleout_probe", run_id)
    chunks = [row for row in rows if row[0] == "copy_chunk"]
    assert [row[1] for row in chunks] == list(range(8))
    assert {row[2] for row in rows} == {"success"}
    assert {row[4] for row in rows} == {cluster.queue}
    per_worker = Counter(row[3] for row in chunks)
    assert set(per_worker) == {"worker1", "worker2"}, per_worker


def test_the_cluster_has_the_package_pools_sized_by_db_pool_max(cluster, manifest):
    pools = cluster.pools()
    pools.pop("default_pool")
    assert pools == pools_from_env(manifest, {"DB_POOL_MAX": "4"})
