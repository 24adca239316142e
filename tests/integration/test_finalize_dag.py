"""The finalize DAG through Airflow, on throwaway servers: refused before a cutover, refused before
the cutover has soaked, then the sources read-only for the apps and the rollback window recorded.

The data is migrated once per module with the engine (layout, data, copy,
constraints, fingerprints); before each test a fixture (``verified``, ``soaking``)
brings the ledger, the flags and the apps' grants to the phase that test starts
from, so the tests drive the DAG with ``airflow dags test`` in any order.
"""

from __future__ import annotations

import pytest

from migration_engine import ledger
from migration_engine.reconcile.engine import Direction
from tests.integration.lifecycle_support import (
    CONTROL,
    assert_the_app_reads_but_cannot_write,
    failed,
    phase,
    reconcile_clean,
    snapshot,
    target,
)

pytestmark = [pytest.mark.integration, pytest.mark.airflow]


@pytest.fixture(scope="module")
def migration_scale() -> float:
    return 0.05


def test_finalize_before_cutover_refuses_naming_what_to_run_first(soaking, estate, manifest, run):
    before = snapshot(estate, manifest)
    result = run("finalize", {"confirm": "FINALIZE", "dry_run": False, "min_cutover_hours": 0, "min_clean_reconciles": 1})
    failed(result, "check_ledger_phase", "finalize needs phase cut_over or finalized", "the ledger says soak since",
           "Run cutover first.")
    assert snapshot(estate, manifest) == before
    assert phase(estate) == "soak"


def test_finalize_makes_the_source_read_only_for_the_apps(soaking, estate, manifest, run):
    cut = run("cutover", {"confirm": "CUTOVER", "dry_run": False, "app_switch_seconds": 0, "min_soak_hours": 0, "min_clean_reconciles": 1})
    assert cut.succeeded, cut.output[-3000:]
    reconcile_clean(estate, manifest, "after-cutover", Direction.TARGET_TO_SOURCE)
    refused = run("finalize", {"confirm": "FINALIZE", "dry_run": False, "min_clean_reconciles": 1})
    failed(refused, "wait_for_cutover_soak", "at least 24 h are required")

    done = run("finalize", {"confirm": "FINALIZE", "dry_run": False, "min_cutover_hours": 0, "min_clean_reconciles": 1})
    assert done.succeeded, done.output[-3000:]
    assert phase(estate) == "finalized"
    assert_the_app_reads_but_cannot_write(estate)
    with estate.source_endpoint("wallet").connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.users").fetchone()[0] > 0
    with target(estate) as conn:
        fact = ledger.read_fact(conn, CONTROL, "rollback_retention")
    assert fact.value["retention_days"] == 7
