"""The dual_write DAG through Airflow, on throwaway servers: a dry run changes nothing, a real run
opens the window with the source still the primary.

The data is migrated once per module with the engine (layout, data, copy,
constraints, fingerprints); before each test a fixture (``verified``, ``soaking``)
brings the ledger, the flags and the apps' grants to the phase that test starts
from, so the tests drive the DAG with ``airflow dags test`` in any order.
"""

from __future__ import annotations

import pytest

from tests.integration.lifecycle_support import flags, phase

pytestmark = [pytest.mark.integration, pytest.mark.airflow]


@pytest.fixture(scope="module")
def migration_scale() -> float:
    return 0.05


def test_dual_write_dry_run_then_real_run_opens_the_window(verified, estate, manifest, run):
    dry = run("dual_write", {"confirm": "DUAL_WRITE"})
    assert dry.succeeded, dry.output[-3000:]
    assert phase(estate) == "verified"
    assert not any(f["dual_write"] for f in flags(estate, manifest).values())
    real = run("dual_write", {"confirm": "DUAL_WRITE", "dry_run": False})
    assert real.succeeded, real.output[-3000:]
    assert phase(estate) == "dual_write"
    opened = flags(estate, manifest)
    assert set(opened) == {"wallet", "issuer", "recruiter"}
    assert all(f["dual_write"] and f["primary_side"] == "source" for f in opened.values())
