"""The cutover's clean-reconcile gate counts only complete evidence, on real servers and real Airflow runs.

Each test forgets the recorded runs, makes one reconcile DAG run of a kind that must
not count (limited by the `tables` Param, a table task errored, the other direction),
then runs the cutover's gate task asking for one clean run: it must refuse and say why.
A complete clean run over every table then satisfies it.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.lifecycle_support import CONTROL, phase, set_phase, target

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

GATE_TASK = "wait_for_clean_reconciles"


@pytest.fixture(scope="module")
def migration_scale() -> float:
    return 0.05


@pytest.fixture
def reconcile(airflow_home, soaking):
    def run(conf: dict | None = None):
        return airflow_home.run_dag("reconcile", {"grace_seconds": 0, **(conf or {})}, extra_env=soaking.airflow_env())

    return run


@pytest.fixture
def gate(airflow_home, soaking):
    """The cutover's gate task on its own, asking for one clean run now, without waiting; (passed, output)."""

    def check() -> tuple[bool, str]:
        proc = airflow_home.airflow("tasks", "test", "cutover", GATE_TASK, "-t", json.dumps({"min_clean_reconciles": 1, "gate_wait_hours": 0}),
                                    extra_env=soaking.airflow_env(), check=False)
        output = proc.stdout + proc.stderr
        refused = "gate refused" in output
        assert refused or "consecutive_clean_runs" in output, output[-3000:]
        return not refused, output

    return check


@pytest.fixture(autouse=True)
def forget_runs(soaking):
    """Each test judges only the runs it makes."""
    with target(soaking) as conn:
        for table in ("reconcile_findings", "reconcile_runs", "reconcile_run_outcomes"):
            if conn.execute("SELECT to_regclass(%s)", (f"{CONTROL}.{table}",)).fetchone()[0]:
                conn.execute(f"DELETE FROM {CONTROL}.{table}")
    assert phase(soaking) == "soak"


def test_a_run_limited_by_the_tables_param_does_not_count(reconcile, gate):
    limited = reconcile({"tables": ["wallet.users"]})
    assert limited.succeeded, limited.output[-3000:]
    passed, output = gate()
    assert not passed
    assert "limited to 1 of" in output


def test_a_run_whose_table_task_errored_does_not_count(soaking, reconcile, gate):
    with target(soaking) as conn:
        conn.execute("ALTER TABLE wallet.otp_codes RENAME COLUMN code TO code_elsewhere")
    try:
        broken = reconcile()
    finally:
        with target(soaking) as conn:
            conn.execute("ALTER TABLE wallet.otp_codes RENAME COLUMN code_elsewhere TO code")
    assert "failed" in {s for t, s in broken.task_states.items() if t.startswith("reconcile_tables[")}, broken.task_states
    assert "reconciliation errored on ['wallet.otp_codes']" in broken.output
    passed, output = gate()
    assert not passed
    # Small tables share a task, so the whole task's tables count as errored.
    assert re.search(r"had table task\(s\) that errored: [^\n]*(wallet\.otp_codes|and \d+ more)", output), output[-3000:]


def test_a_run_in_the_other_direction_does_not_count(soaking, reconcile, gate):
    set_phase(soaking, "cut_over")
    backward = reconcile()
    set_phase(soaking, "rolled_back", "soak")
    assert backward.succeeded, backward.output[-3000:]
    passed, output = gate()
    assert not passed
    assert "reconciled target_to_source, not source_to_target" in output


def test_a_complete_clean_run_over_every_table_counts(reconcile, gate):
    complete = reconcile()
    assert complete.succeeded, complete.output[-3000:]
    passed, output = gate()
    assert passed, output[-3000:]
