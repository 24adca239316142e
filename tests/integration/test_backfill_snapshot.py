"""The backfill's source snapshots while the apps write, through real `airflow dags test` runs.

- A parent and its child inserted on the source after the snapshot, between the
  copy of the parent table and that of the child table: the child is not
  copied without its parent, the foreign keys validate with no forced re-run,
  and the catch-up brings both.
- The snapshot holder SIGKILLed mid-copy: the run fails naming the lost
  snapshot, a new run takes a new snapshot and copies again, merging, what was
  read at the old one; every row is there exactly once.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest
from psycopg import sql

from migration_engine.local.estate import Estate
from migration_engine.local.servers import wait_until
from migration_engine.simulator import DualWriteSimulator, SimulatorConfig
from migration_engine.verify import verify
from tests.integration.backfill_support import remove_slow_down, slow_down, slow_down_first_copy, source_sql, target_sql
from tests.integration.lifecycle_support import bring_to_schema_applied, phase

pytestmark = [pytest.mark.integration, pytest.mark.airflow, pytest.mark.timeout(1800)]

SCALE = 0.3
WRITES_PER_S = 20.0


@pytest.fixture
def fresh(manifest, tmp_path):
    """A new estate at `schema_applied` with the apps writing its sources, and the env its DAG runs need."""
    with Estate(manifest) as estate:
        sources = bring_to_schema_applied(estate, manifest, scale=SCALE, seed=13)
        config = SimulatorConfig(rate_per_s=WRITES_PER_S, duration_s=1800, follow_read_path=True, seed=13)
        apps = DualWriteSimulator(manifest, sources, estate.target_endpoint(), config).start()
        env = {**estate.airflow_env(), "MIGRATION_ARTIFACT_DIR": str(tmp_path / "artifacts")}
        try:
            yield estate, apps, env
        finally:
            apps.stop()
            apps.join()


def sleeping_copy(estate) -> bool:
    return bool(target_sql(estate, "SELECT 1 FROM pg_stat_activity WHERE wait_event = 'PgSleep'"))


def in_background(airflow_home, env, dag_id: str, conf: dict | None = None) -> tuple[threading.Thread, dict]:
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(result=airflow_home.run_dag(dag_id, conf, extra_env=env)))
    thread.start()
    return thread, outcome


def stop_apps_and_compare(estate, manifest, apps, airflow_home, env) -> dict:
    apps.stop()
    written = apps.join()
    assert written.total > 0
    caught_up = airflow_home.run_dag("catch_up", extra_env=env)
    assert caught_up.succeeded, caught_up.output[-6000:]
    result = verify(estate.source_endpoints(), estate.target_endpoint(), manifest)
    assert result["ok"], result["failures"]
    return result


def test_a_parent_and_child_written_mid_copy_need_no_forced_rerun(fresh, manifest, airflow_home):
    estate, apps, env = fresh
    tenant = source_sql(estate, "issuer", "SELECT min(id::text) FROM public.tenants")[0][0]
    slow_down(estate, "issuer.tenants", tenant, seconds=8)
    thread, outcome = in_background(airflow_home, env, "backfill")
    assert wait_until(lambda: sleeping_copy(estate), timeout=600, interval=0.2)
    # The parent table's copy is under way, the child table's not begun: a parent and a child arrive.
    parent = source_sql(estate, "issuer", "INSERT INTO public.tenants (name) VALUES ('arrived mid-copy') RETURNING id")[0][0]
    source_sql(estate, "issuer", "INSERT INTO public.users (username, password, tenant_id) VALUES ('child-mid-copy', 'x', %s)",
               (parent,))
    thread.join()
    result = outcome["result"]
    assert result.succeeded, result.output[-8000:]
    assert result.state_of("apply_post_load_constraints") == "success"
    assert target_sql(estate, "SELECT bool_and(convalidated) FROM pg_constraint WHERE contype = 'f'") == [(True,)]
    assert target_sql(estate, "SELECT count(*) FROM issuer.users WHERE username = 'child-mid-copy'") == [(0,)]
    assert phase(estate) == "backfilled"

    remove_slow_down(estate, "issuer.tenants")
    stop_apps_and_compare(estate, manifest, apps, airflow_home, env)
    assert target_sql(estate, "SELECT count(*) FROM issuer.users WHERE username = 'child-mid-copy'") == [(1,)]


def test_holder_killed_mid_copy_fails_the_run_naming_it_and_a_new_run_copies_each_row_once(fresh, manifest, airflow_home):
    estate, apps, env = fresh
    # The holder dies while the table's first chunk copies: its other chunks still have to read at the snapshot.
    slow_down_first_copy(estate, "wallet.activities", seconds=8)
    thread, outcome = in_background(airflow_home, env, "backfill", {"target_chunk_rows": 200})
    assert wait_until(lambda: sleeping_copy(estate), timeout=600, interval=0.2)
    (snapshot_id, holder), = target_sql(
        estate, "SELECT snapshot_id, holder FROM migration_control.source_snapshots WHERE service = 'wallet' AND state = 'holding'")
    os.kill(int(holder.rsplit(":", 1)[1]), signal.SIGKILL)
    thread.join()
    killed = outcome["result"]
    assert not killed.succeeded
    assert f"snapshot {snapshot_id} of the wallet source" in killed.output and "is gone" in killed.output, killed.output[-8000:]
    assert killed.state_of("release_source_snapshots") == "success"
    assert phase(estate) == "schema_applied"
    read_at_lost = target_sql(estate, "SELECT count(*) FROM migration_control.backfill_chunks WHERE source_snapshot = %s",
                              (snapshot_id,))[0][0]
    assert read_at_lost > 0

    remove_slow_down(estate, "wallet.activities")
    rerun = airflow_home.run_dag("backfill", {"target_chunk_rows": 200}, extra_env=env)
    assert rerun.succeeded, rerun.output[-8000:]
    (new_snapshot, new_run), = target_sql(
        estate, "SELECT snapshot_id, run_id FROM migration_control.source_snapshots WHERE service = 'wallet' "
                "ORDER BY taken_at DESC LIMIT 1")
    assert new_snapshot != snapshot_id
    # Every wallet chunk of the new run read at its new snapshot; ranges the lost one had filled were merged.
    modes = dict(target_sql(estate, "SELECT source_snapshot = %s, count(*) FROM migration_control.backfill_chunks "
                                    "WHERE run_id = %s AND table_name LIKE 'wallet.%%' GROUP BY 1", (new_snapshot, new_run)))
    assert modes.keys() == {True}, modes
    assert target_sql(estate, "SELECT count(*) FROM migration_control.backfill_chunks WHERE run_id = %s AND mode = 'merge' "
                              "AND table_name = 'wallet.activities'", (new_run,))[0][0] > 0
    result = stop_apps_and_compare(estate, manifest, apps, airflow_home, env)
    for row in result["tables"]:
        table = manifest.table(row["table"])
        distinct = target_sql(estate, sql.SQL("SELECT count(DISTINCT {k}) FROM {t}").format(
            k=sql.Identifier(table.key[0]), t=sql.Identifier(*table.target_ident)))[0][0]
        assert distinct == row["rows_target"] == row["rows_source"], row
