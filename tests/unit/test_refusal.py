"""One refusal idiom: CheckFailed, raised anywhere in a task, fails it without retries; anything else
(a lost connection, a restarted server) keeps the task's retries."""

from __future__ import annotations

import psycopg
import pytest
from airflow.sdk import RetryAction

from migration_engine import dag_support as ds
from migration_engine.backup import BackupError
from migration_engine.checks import CheckFailed
from migration_engine.endpoints import EndpointError
from migration_engine.ledger import PhaseError, StaleEpoch


@pytest.fixture(scope="module")
def policy():
    return ds.default_args()["retry_policy"]


@pytest.mark.parametrize("refusal", [CheckFailed("no"), PhaseError("out of order"), StaleEpoch("moved on"),
                                     BackupError("pg_dump failed")])
def test_a_refusal_fails_at_once(policy, refusal):
    assert policy.evaluate(refusal, try_number=1, max_tries=3).action is RetryAction.FAIL


@pytest.mark.parametrize("transient", [EndpointError("cannot connect to target"), psycopg.OperationalError("server closed"),
                                       RuntimeError("reconciliation errored on ['wallet.users']")])
def test_anything_else_keeps_its_retries(policy, transient):
    assert policy.evaluate(transient, try_number=1, max_tries=3).action is RetryAction.DEFAULT
