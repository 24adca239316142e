"""DAG integrity and policy: every DAG imports without error and without touching
a database, and carries what on-call staff and the UI rely on."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
EXPECTED_DAGS = {p.stem for p in DAGS.glob("*.py") if not p.name.startswith("_")}
READABLE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
RUNBOOK_PHASE = re.compile(r"runbook", re.IGNORECASE)


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory, monkeypatch_module):
    home = tmp_path_factory.mktemp("airflow_parse_home")
    monkeypatch_module.setenv("AIRFLOW_HOME", str(home))
    monkeypatch_module.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    monkeypatch_module.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))

    def refuse(*args, **kwargs):
        raise AssertionError("a DAG file opened a database connection at parse time")

    monkeypatch_module.setattr(psycopg, "connect", refuse)
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_every_dag_file_imports_without_error(dagbag):
    assert EXPECTED_DAGS, "no DAG files found"
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED_DAGS, "file name must equal dag_id"


def test_every_dag_has_tags_owner_retries_and_docs(dagbag):
    from airflow.providers.standard.operators.hitl import HITLOperator

    for dag_id in dagbag.dag_ids:
        dag = dagbag.dags[dag_id]
        assert dag.tags, f"{dag_id}: no tags"
        assert dag.doc_md and RUNBOOK_PHASE.search(dag.doc_md), f"{dag_id}: doc_md must say which runbook phase it is"
        assert "re-run" in dag.doc_md.lower() or "rerun" in dag.doc_md.lower(), f"{dag_id}: doc_md must say how to re-run"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id}: owner not set"
            if isinstance(task, HITLOperator):
                # A human decision is no transient error: a retry would only ask again after a timeout refused.
                assert task.retries == 0, f"{dag_id}.{task.task_id}: an approval must not retry"
            else:
                assert task.retries >= 2, f"{dag_id}.{task.task_id}: retries {task.retries} < 2"
            assert READABLE_ID.match(task.task_id), f"{dag_id}.{task.task_id}: unreadable task id"
            # Without it a refusal (CheckFailed) would be retried like a lost connection.
            assert task.retry_policy is not None, f"{dag_id}.{task.task_id}: no retry policy for refusals"


def test_every_dag_is_tagged_for_the_refusal_of_undeclared_conf_at_trigger(dagbag):
    """The API server's plugin refuses undeclared conf keys only for DAGs with this tag
    (the tasks' own refusal is run for every DAG in tests/integration/test_undeclared_conf.py)."""
    from migration_engine.undeclared_conf import STRICT_CONF_TAG

    untagged = [dag_id for dag_id in dagbag.dag_ids if STRICT_CONF_TAG not in dagbag.dags[dag_id].tags]
    assert untagged == [], f"not tagged {STRICT_CONF_TAG}: {untagged}"


def test_every_param_has_a_title_and_description(dagbag):
    for dag_id in dagbag.dag_ids:
        for name, param in dagbag.dags[dag_id].params.items():
            schema = param.schema if hasattr(param, "schema") else {}
            assert schema.get("title"), f"{dag_id}: param {name} has no title"
            assert param.description or schema.get("description"), f"{dag_id}: param {name} has no description"


def test_every_pool_a_task_uses_is_declared(dagbag, manifest):
    from migration_engine.env_contract import pools_from_env

    declared = set(pools_from_env(manifest, {})) | {"default_pool"}
    for dag_id in dagbag.dag_ids:
        for task in dagbag.dags[dag_id].tasks:
            assert task.pool in declared, f"{dag_id}.{task.task_id}: pool {task.pool} is not declared"


def test_no_deprecated_airflow_imports():
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ruff"), "check", "--select", "AIR3", "--no-cache", "dags", "plugins"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("param", "refused", "taken"), [
    ("max_copy_mb_per_s", [-1, -0.5, 10_001, 1e12, "fast", True], [None, 0, 0.5, 40, 10_000]),
    ("target_chunk_rows", [-5, 0, 100_000_001, 2.5, "1000"], [None, 1, 50_000]),
])
def test_backfill_numbers_outside_their_bounds_are_refused_by_the_param_schema(dagbag, param, refused, taken):
    """What Airflow checks when a run is triggered (one such run per mechanism is in test_hostile_input.py)."""
    from airflow.sdk.definitions.param import ParamValidationError

    # A copy: resolving a value stores it in the Param.
    schema = copy.deepcopy(dagbag.dags["backfill"].params.get_param(param))
    for value in refused:
        with pytest.raises(ParamValidationError):
            schema.resolve(value=value)
    for value in taken:
        assert schema.resolve(value=value) == value


@pytest.mark.parametrize(("dag_id", "word"), [("dual_write", "DUAL_WRITE"), ("cutover", "CUTOVER"),
                                              ("rollback", "ROLLBACK"), ("finalize", "FINALIZE")])
def test_each_manual_dags_confirmation_task_refuses_a_wrong_word(dagbag, dag_id, word):
    """The task body itself, run without Airflow: it must reach the check, not some other callable of that name."""
    from migration_engine.checks import CheckFailed

    body = dagbag.dags[dag_id].get_task("check_confirmation").python_callable
    with pytest.raises(CheckFailed, match=f"the confirm parameter must be exactly '{word}', got 'nope'"):
        body(params={"confirm": "nope", "repair_source": None})
