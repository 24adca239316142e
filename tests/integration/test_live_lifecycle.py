"""The lifecycle through DAG runs alone while the apps never stop writing.

The writer simulator starts before preflight and follows the read-path flags as
the apps do (source only until dual-write opens, both sides after). Every move
of the ledger is a DAG run: preflight → schema_baseline → backfill (one
snapshot per source) → catch_up → verify → dual_write → reconcile, whose first
clean run starts the soak. On the way, verify still fails on real defects: a
value changed and a row deleted on the target alone, named by table and key.
Once the writers stop and a final reconcile runs, both sides are equal.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from migration_engine.generator import generate
from migration_engine.schema_sql import create_source_layout
from migration_engine.simulator import DualWriteSimulator, SimulatorConfig, TargetFaults
from migration_engine.verify import verify
from tests.integration.backfill_support import target_sql
from tests.integration.lifecycle_support import phase

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

WRITES_PER_S = 25.0
SCALE = 0.2
# Left out of the apps' writes, so its rows stay older than any catch-up: the place for the defects.
UNTOUCHED = "issuer.platform_authorities"


@pytest.fixture(scope="module")
def run(estate, airflow_home, tmp_path_factory):
    env = {**estate.airflow_env(), "MIGRATION_ARTIFACT_DIR": str(tmp_path_factory.mktemp("live") / "artifacts"),
           "DB_POOL_MAX": "3"}

    def run_dag(dag_id: str, conf: dict | None = None, *, succeed: bool = True):
        result = airflow_home.run_dag(dag_id, conf, extra_env=env)
        if succeed:
            assert result.succeeded, f"{dag_id}: {result.task_states}\n{result.output[-6000:]}"
        return result

    run_dag.env = env
    return run_dag


@pytest.fixture(scope="module")
def apps(estate, manifest):
    sources = {s.name: estate.source_endpoint(s.name) for s in manifest.services}
    create_source_layout(manifest, sources)
    generate(manifest, sources, scale=SCALE, seed=5)
    config = SimulatorConfig(
        rate_per_s=WRITES_PER_S, duration_s=3600, follow_read_path=True, faults=TargetFaults(drop=0.05), seed=5,
        tables=tuple(t.qualified for t in manifest.tables if t.qualified != UNTOUCHED),
    )
    simulator = DualWriteSimulator(manifest, sources, estate.target_endpoint(), config).start()
    yield simulator
    simulator.stop()
    simulator.join()


def latest_report(run) -> dict:
    reports = Path(run.env["MIGRATION_ARTIFACT_DIR"], "verify").glob("*/verification.json")
    return json.loads(max(reports, key=lambda p: p.stat().st_mtime).read_text())


# One lifecycle, one test: about fifteen DAG runs in a row, each phase needing the one before.
@pytest.mark.timeout(3600)
def test_dag_runs_alone_carry_a_written_estate_to_the_soak_and_verify_names_target_only_defects(
        estate, manifest, apps, run):
    run("preflight")
    run("schema_baseline")
    run("backfill")
    assert apps.report.total > 0, "the apps did not write during the backfill"
    caught_up = run("catch_up")
    assert phase(estate) == "backfilled"
    # The writes the apps made since the snapshots reached the target through the catch-up.
    assert sum(int(n) for n in re.findall(r"pass \d+: \d+ drifted, (\d+) repaired", caught_up.output)) > 0, caught_up.output[-4000:]
    run("verify")
    assert phase(estate) == "verified"
    report = latest_report(run)
    assert report["ok"] and report["live"] and len(report["tables"]) == len(manifest.tables)
    # Rows written since the catch-up are listed by key, never counted as equal.
    for row in report["tables"]:
        assert row["checksum_match"] or row["in_flight_keys"], row

    table = manifest.table(UNTOUCHED)
    changed, deleted = (key for (key,) in target_sql(estate, "SELECT id::text FROM issuer.platform_authorities ORDER BY id LIMIT 2"))
    target_sql(estate, "UPDATE issuer.platform_authorities SET name = name || ' (changed on the target only)' WHERE id::text = %s", (changed,))
    target_sql(estate, "DELETE FROM issuer.platform_authorities WHERE id::text = %s", (deleted,))
    refused = run("verify", succeed=False)
    assert refused.state_of("check_verified") == "failed", refused.task_states
    report = latest_report(run)
    assert report["failed_tables"] == [table.qualified], report["failures"]
    row = next(r for r in report["tables"] if r["table"] == table.qualified)
    assert set(row["unexplained_keys"]) == {changed, deleted}
    assert changed in refused.output and deleted in refused.output

    # The catch-up refuses to paper over them too, until told to repair them.
    assert not run("catch_up", succeed=False).succeeded
    run("catch_up", {"repair_unexplained": True})
    run("verify")
    assert latest_report(run)["ok"]

    run("dual_write", {"confirm": "DUAL_WRITE", "dry_run": False})
    assert phase(estate) == "dual_write"
    for _ in range(3):
        run("reconcile")
        if phase(estate) == "soak":
            break
    assert phase(estate) == "soak"
    apps.stop()
    written = apps.join()
    # The apps held their rate from before preflight to the soak.
    assert written.total / written.seconds >= 0.8 * WRITES_PER_S, written.as_dict()
    assert written.secondary["applied"] > 0, "dual-write never reached the target"
    run("reconcile")
    sources = {s.name: estate.source_endpoint(s.name) for s in manifest.services}
    # Rows and state-store payloads; the target's sequences are moved up by the cutover, which this test stops short of.
    final = verify(sources, estate.target_endpoint(), manifest, sequences=False)
    assert final["ok"], final["failures"]
