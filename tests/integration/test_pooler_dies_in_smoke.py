"""The pooler dies after the cutover's gates passed, while its smoke checks run.

A smoke query that sleeps holds the checks open; the pooler is stopped during
that sleep. The cutover must not end on the target: the smoke checks fail, the
read path goes back to the source and the ledger records rolled_back.
"""

from __future__ import annotations

import shutil
import threading

import pytest
import yaml

from migration_engine.local.servers import wait_until
from migration_engine.manifest import DEFAULT_MANIFEST, load_manifest
from tests.integration.lifecycle_support import bring_to_verified, failed, flags, phase, reconcile_clean, set_phase

pytestmark = [pytest.mark.integration, pytest.mark.airflow]


@pytest.fixture(scope="module")
def soaking(estate, manifest):
    return bring_to_verified(estate, manifest, scale=0.1)


@pytest.fixture
def run(airflow_home, estate):
    def run_dag(dag_id: str, conf: dict | None = None, **env):
        return airflow_home.run_dag(dag_id, conf, extra_env={**estate.airflow_env(), **env})

    return run_dag


def slow_smoke_manifest(manifest, tmp_path):
    smoke = tmp_path / "smoke"
    shutil.copytree(manifest.smoke_sql, smoke)
    (smoke / "recruiter" / "zz_hold_open.sql").write_text("SELECT pg_sleep(4)\n")
    raw = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    raw["smoke_sql"] = str(smoke)
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert load_manifest(path).smoke_sql == smoke
    return path


def test_pooler_stopped_during_smoke_checks_rolls_back_to_the_source(soaking, estate, manifest, run, tmp_path):
    dual = run("dual_write", {"confirm": "DUAL_WRITE", "dry_run": False})
    assert dual.succeeded, dual.output[-3000:]
    reconcile_clean(estate, manifest, "soak-0")
    set_phase(estate, "soak")
    slow = slow_smoke_manifest(manifest, tmp_path)

    def smoke_sleeping() -> bool:
        with estate.target_endpoint().connect(autocommit=True) as conn:
            return bool(conn.execute("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(4)%'").fetchall())

    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(result=run(
        "cutover", {"confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 0, "min_clean_reconciles": 1},
        MIGRATION_MANIFEST=str(slow))))
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
