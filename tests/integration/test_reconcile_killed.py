"""A reconciliation SIGKILLed mid-repair, then run again: it converges and the drift ledger stays consistent.

The repair runs in a child process on 2,000 drifted rows while a target trigger
slows each repaired row, so the kill always lands between committed batches.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from psycopg import sql

from migration_engine import verify
from migration_engine.chunks import plan_all
from migration_engine.copier import copy_chunk
from migration_engine.generator import generate
from migration_engine.local.servers import wait_until
from migration_engine.reconcile.engine import Direction, reconcile_table
from tests.integration.backfill_support import create_schema, source_sql, target_sql

pytestmark = [pytest.mark.integration]

CONTROL = "migration_control"
TABLE = "wallet.activities"
DRIFTED = 2_000
CAP = 100_000

CHILD = textwrap.dedent("""
    import os
    from migration_engine.endpoints import from_url
    from migration_engine.manifest import DEFAULT_MANIFEST, load_manifest
    from migration_engine.reconcile.engine import reconcile_table
    table = load_manifest(DEFAULT_MANIFEST).table(os.environ["TABLE"])
    reconcile_table(table, from_url("source", os.environ["SOURCE_URL"]),
                    from_url("target", os.environ["TARGET_URL"]).named("credity-migration-reconcile"),
                    run_id="killed", direction="source_to_target", control_schema="migration_control",
                    cap=int(os.environ["CAP"]), grace_seconds=0)
""")


@pytest.fixture(scope="module")
def copied(estate, manifest):
    create_schema(estate, manifest)
    sources = estate.source_endpoints()
    generate(manifest, sources, scale=1, seed=9)
    for chunk in plan_all(manifest, sources):
        if chunk.table == TABLE:
            copy_chunk(sources["wallet"], estate.target_endpoint(), manifest, chunk)
    return estate


def repaired_so_far(estate) -> int:
    return target_sql(estate, "SELECT count(*) FROM wallet.activities WHERE description LIKE 'drifted %'")[0][0]


def test_reconcile_killed_mid_repair_then_rerun_converges(copied, manifest):
    estate = copied
    assert source_sql(estate, "wallet", "SELECT count(*) FROM activities")[0][0] >= DRIFTED
    source_sql(estate, "wallet", "UPDATE activities SET description = 'drifted ' || id WHERE id IN "
                                 "(SELECT id FROM activities ORDER BY id LIMIT %s)", (DRIFTED,))
    target_sql(estate, "CREATE FUNCTION wallet.slow_repair() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN PERFORM pg_sleep(0.01); RETURN NEW; END $$")
    for event in ("INSERT", "UPDATE"):
        target_sql(estate, sql.SQL("CREATE TRIGGER {} BEFORE {} ON wallet.activities FOR EACH ROW "
                                   "EXECUTE FUNCTION wallet.slow_repair()").format(
            sql.Identifier(f"slow_{event.lower()}"), sql.SQL(event)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TABLE": TABLE, "CAP": str(CAP),
           "SOURCE_URL": estate.source_url("wallet"), "TARGET_URL": estate.target_url()}
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: repaired_so_far(estate) > 0, timeout=120, interval=0.1), "no repair committed"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    for event in ("insert", "update"):
        target_sql(estate, sql.SQL("DROP TRIGGER {} ON wallet.activities").format(sql.Identifier(f"slow_{event}")))
    target_sql(estate, "DROP FUNCTION wallet.slow_repair()")
    # The backend of the killed repair finishes or rolls back its batch; nothing half-written stays.
    assert wait_until(lambda: not target_sql(
        estate, "SELECT 1 FROM pg_stat_activity WHERE application_name = 'credity-migration-reconcile'"), timeout=60)
    partly = repaired_so_far(estate)
    assert 0 < partly < DRIFTED, "the kill did not land mid-repair"

    table = manifest.table(TABLE)
    rerun = reconcile_table(table, estate.source_endpoint("wallet"), estate.target_endpoint(), run_id="rerun",
                            direction=Direction.SOURCE_TO_TARGET, control_schema=CONTROL, cap=CAP, grace_seconds=0)
    assert (rerun.drifted, rerun.repaired, rerun.unrepaired) == (DRIFTED - partly, DRIFTED - partly, 0), rerun.summary()
    clean = reconcile_table(table, estate.source_endpoint("wallet"), estate.target_endpoint(), run_id="clean",
                            direction=Direction.SOURCE_TO_TARGET, control_schema=CONTROL, cap=CAP, grace_seconds=0)
    assert clean.clean
    result = verify.verify(estate.source_endpoints(), estate.target_endpoint(), manifest, tables=[TABLE],
                           state_store=False, sequences=False)
    assert result["ok"], result["failures"]
    total, distinct = target_sql(estate, "SELECT count(*), count(DISTINCT id) FROM wallet.activities")[0]
    assert total == distinct
    # The ledger: the killed run recorded nothing (its record is written last), the rerun and the clean run are there.
    runs = dict(target_sql(estate, sql.SQL("SELECT run_id, count(*) FROM {} GROUP BY run_id").format(
        sql.Identifier(CONTROL, "reconcile_runs"))))
    assert "killed" not in runs and runs.get("rerun") == 1 and runs.get("clean") == 1, runs
    findings = target_sql(estate, sql.SQL("SELECT count(*) FROM {} WHERE run_id = 'rerun'").format(
        sql.Identifier(CONTROL, "reconcile_findings")))[0][0]
    assert findings == DRIFTED - partly
