"""The target, then the source, restarted while the backfill DAG copies (through Airflow).

A target trigger holds one chunk's COPY mid-stream (pg_sleep), so the restart
always lands inside a chunk transaction. A target restart: the interrupted task
fails on the broken connection, retries with backoff and completes; every chunk
is recorded once. A source restart also ends the source snapshots the chunks
read at: the run fails naming the lost snapshot and a new run converges.
Afterwards the target equals the source and no key is duplicated.
"""

from __future__ import annotations

import threading

import pytest
from psycopg import sql

from migration_engine import ledger
from migration_engine.local.servers import wait_until
from tests.integration.backfill_support import source_sql, target_sql
from tests.integration.lifecycle_support import CONTROL
from tests.integration.test_backfill_dag import (
    assert_target_equals_source,
    backends,
    chunk_ledger,
    remove_slow_down,
    slow_down,
)

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

CHUNK_ROWS = 400
SLOW_TABLE = "wallet.activities"


def empty_target(estate, manifest) -> None:
    """Back to before any chunk, whichever test ran first: service tables and the chunk ledger emptied
    (as the owner role may)."""
    names = [sql.Identifier(*t.target_ident) for t in manifest.tables]
    # The chunk ledger exists once a backfill has run.
    if target_sql(estate, sql.SQL("SELECT to_regclass(%s)"), (f"{CONTROL}.backfill_chunks",))[0][0]:
        names.append(sql.Identifier(CONTROL, "backfill_chunks"))
    target_sql(estate, sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(names)))


def backfill_through_a_restart(estate, airflow_home, manifest, restart, logical_date: str):
    """Run the backfill DAG in a thread; restart a server while a chunk is held mid-COPY; return the run."""
    table = manifest.table(SLOW_TABLE)
    stuck = source_sql(estate, table.service, "SELECT percentile_disc(0.6) WITHIN GROUP (ORDER BY id) FROM activities")[0][0]
    slow_down(estate, SLOW_TABLE, stuck, seconds=5)
    outcome = {}

    def run():
        outcome["result"] = airflow_home.run_dag(
            "backfill", {"target_chunk_rows": CHUNK_ROWS}, logical_date=logical_date,
            # The retries must outlast the restart, as in production.
            extra_env={**estate.airflow_env(), "MIGRATION_RETRY_DELAY_SECONDS": "10"})

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert wait_until(lambda: bool(backends(estate, "PgSleep")), timeout=300, interval=0.2), "no chunk was held"
        restart()
    finally:
        thread.join(timeout=1200)
    remove_slow_down(estate, SLOW_TABLE)
    return outcome["result"]


def retried_copy_tasks(airflow_home) -> int:
    from tests.integration.test_backfill_dag import metadata_rows

    return metadata_rows(
        airflow_home,
        "SELECT count(*) FROM task_instance WHERE dag_id = 'backfill' AND task_id = 'copy_chunk' AND try_number > 1 "
        "AND run_id = (SELECT run_id FROM dag_run WHERE dag_id = 'backfill' ORDER BY id DESC LIMIT 1)")[0][0]


def assert_converged(estate, manifest, *, copied_once: bool = True) -> None:
    assert_target_equals_source(estate, manifest)
    recorded = chunk_ledger(estate)
    copies = {copies for copies, _mode, _rows in recorded.values()}
    assert recorded and (copies == {1} if copied_once else copies <= {1, 2}), recorded
    rows = sum(count for _copies, _mode, count in recorded.values())
    count = sql.SQL("SELECT count(*) FROM {}")
    assert rows == sum(source_sql(estate, t.service, count.format(sql.Identifier(*t.source_ident)))[0][0] for t in manifest.tables)


def test_target_restarted_mid_backfill_retries_and_converges(schema_applied, manifest, airflow_home):
    estate = schema_applied
    empty_target(estate, manifest)
    result = backfill_through_a_restart(estate, airflow_home, manifest, estate.target.restart, "2026-04-01T00:00:00+00:00")
    assert result.succeeded, f"{result.task_states}\n{result.output[-4000:]}"
    assert retried_copy_tasks(airflow_home) >= 1, "the restart interrupted nothing: the test proved nothing"
    assert_converged(estate, manifest)
    with estate.target_endpoint().connect() as conn:
        assert ledger.current_phase(conn, CONTROL) == "backfilled"


def test_source_restarted_mid_backfill_loses_the_snapshot_and_a_new_run_converges(schema_applied, manifest, airflow_home):
    """A source restart ends the snapshot holders' sessions: the chunks cannot read at their snapshot any
    more, so the run fails naming it; a new run takes new snapshots and merges again what the old ones read."""
    estate = schema_applied
    empty_target(estate, manifest)
    result = backfill_through_a_restart(estate, airflow_home, manifest, estate.source.restart, "2026-04-02T00:00:00+00:00")
    assert not result.succeeded
    assert "is gone" in result.output and "snapshot" in result.output, result.output[-4000:]
    assert wait_until(estate.source.is_running, timeout=30)
    rerun = airflow_home.run_dag("backfill", {"target_chunk_rows": CHUNK_ROWS}, extra_env=estate.airflow_env(),
                                 logical_date="2026-04-03T00:00:00+00:00")
    assert rerun.succeeded, f"{rerun.task_states}\n{rerun.output[-4000:]}"
    # Chunks read at a lost snapshot were merged once more at the new one: copied twice, never duplicated.
    assert_converged(estate, manifest, copied_once=False)
