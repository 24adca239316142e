"""A conf key a DAG does not declare is refused, naming the key, before any database is touched.

Airflow 3.3 checks the value of each declared Param when a run is triggered but lets any
other key through, so the package refuses it in every task's ``pre_execute``: the run's
first tasks fail before their bodies run. Every DAG is run through Airflow's own
``airflow dags test`` command with its connections pointing at a closed port, so a task
that reached a database would fail with a connection error instead of the refusal.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from migration_engine.env_contract import connection_sources
from tests.dags.test_dag_integrity import EXPECTED_DAGS

CLOSED_PORT_URI = "postgres://nobody:unused@127.0.0.1:1/nothing"

# `airflow dags test` once per (dag_id, conf) in one process: Airflow's start-up (the
# in-process execution API) is paid once instead of once per DAG.
_DAGS_TEST = r'''
import json, sys
from airflow.cli.cli_parser import get_parser
for dag_id, conf in json.loads(sys.argv[1]):
    print(f"=== run {dag_id}", flush=True)
    args = get_parser().parse_args(["dags", "test", dag_id, "--conf", json.dumps(conf)])
    try:
        args.func(args)
    except SystemExit as exc:
        print(f"=== {dag_id} exited: {exc.code}", flush=True)
'''


def dags_test(airflow_home, manifest, runs: list[tuple[str, dict]]) -> dict[str, tuple[str, dict]]:
    """dag_id -> (its part of the output, its task states)."""
    nowhere = {source.airflow_variable: CLOSED_PORT_URI for source in connection_sources(manifest)}
    started_at = airflow_home._now()
    proc = subprocess.run([sys.executable, "-c", _DAGS_TEST, json.dumps(runs)], env={**airflow_home.env, **nowhere},
                          capture_output=True, text=True, timeout=1200)
    output = proc.stdout + proc.stderr
    parts = {chunk.split("\n", 1)[0]: chunk for chunk in output.split("=== run ")[1:]}
    assert sorted(parts) == sorted(dag_id for dag_id, _ in runs), output[-3000:]
    return {dag_id: (parts[dag_id], airflow_home._task_states(dag_id, started_at)) for dag_id, _ in runs}


def assert_refused_before_any_database(dag_id: str, output: str, states: dict, message: str) -> None:
    assert f"=== {dag_id} exited: DagRun failed" in output, output[-3000:]
    assert message in output, output[-3000:]
    assert "Connection refused" not in output, f"{dag_id} reached for a database"
    assert "failed" in states.values() and set(states.values()) <= {"failed", "upstream_failed", "None"}, (dag_id, states)


@pytest.mark.airflow
def test_every_dag_refuses_an_undeclared_conf_key_naming_it(airflow_home, manifest):
    runs = [(dag_id, {"dry_runn": True}) for dag_id in sorted(EXPECTED_DAGS)]
    # dry_run on a DAG that has none, with a second unknown key: both named, and a hint.
    runs.append(("preflight", {"dry_run": True, "fresh_backupp": True}))
    runs.remove(("preflight", {"dry_runn": True}))
    results = dags_test(airflow_home, manifest, runs)
    for dag_id, (output, states) in results.items():
        if dag_id == "preflight":
            message = ("conf keys 'dry_run', 'fresh_backupp' are not a Param of DAG 'preflight', which declares "
                       "backup_dir, backup_jobs, fresh_backup, max_age_hours. It has no dry run")
        else:
            message = f"conf key 'dry_runn' is not a Param of DAG {dag_id!r}"
        assert_refused_before_any_database(dag_id, output, states, message)
