"""The refusal of undeclared conf keys: its words, and which requests the API server's middleware reads."""

from __future__ import annotations

import json

import pytest

from migration_engine.undeclared_conf import (
    creates_runs,
    dag_and_conf,
    refusal,
    route_path,
    trigger_again,
    undeclared_keys,
)

DECLARED = ["fresh_backup", "backup_dir"]


def test_only_undeclared_keys_are_named_sorted():
    assert undeclared_keys({"fresh_backup": True, "zeta": 1, "alpha": 2}, DECLARED) == ["alpha", "zeta"]
    assert undeclared_keys({"fresh_backup": True}, DECLARED) == []
    assert undeclared_keys(None, DECLARED) == []


def test_refusal_names_dag_keys_and_declared_params_but_no_value():
    one = refusal("preflight", ["fresh_backupp"], DECLARED)
    assert one == "conf key 'fresh_backupp' is not a Param of DAG 'preflight', which declares backup_dir, fresh_backup."
    assert trigger_again(["fresh_backupp"]) == "trigger it again without it."
    two = refusal("preflight", ["dry_run", "x"], [])
    assert two.startswith("conf keys 'dry_run', 'x' are not a Param of DAG 'preflight', which declares none.")
    assert "It has no dry run" in two
    assert trigger_again(["dry_run", "x"]) == "trigger it again without them."


def scope(path: str, method: str = "POST", root_path: str = "") -> dict:
    return {"type": "http", "method": method, "path": path, "root_path": root_path}


@pytest.mark.parametrize(("path", "method", "root_path", "expected"), [
    ("/api/v2/dags/preflight/dagRuns", "POST", "", True),
    ("/api/v2/dags/preflight/dagRuns/", "POST", "", True),
    ("/api/v2/backfills", "POST", "", True),
    ("/airflow/api/v2/dags/preflight/dagRuns", "POST", "/airflow", True),
    ("/api/v2/dags/preflight/dagRuns", "GET", "", False),
    ("/api/v2/dags/preflight/dagRuns/list", "POST", "", False),
    ("/api/v2/dags/preflight/dagRuns/manual__1/clear", "POST", "", False),
    ("/api/v2/backfills/dry_run", "POST", "", False),
    ("/execution/dag-runs/preflight/run1", "POST", "", False),
])
def test_only_requests_that_create_runs_are_read(path, method, root_path, expected):
    assert creates_runs(scope(path, method, root_path)) is expected


def test_route_path_drops_the_deployments_root_path():
    assert route_path(scope("/airflow/api/v2/backfills", root_path="/airflow")) == "/api/v2/backfills"
    assert route_path(scope("/api/v2/backfills", root_path="/airflow")) == "/api/v2/backfills"


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


def test_dag_and_conf_from_a_trigger_and_from_a_backfill():
    assert dag_and_conf("/api/v2/dags/preflight/dagRuns", body(logical_date=None, conf={"a": 1})) == ("preflight", {"a": 1})
    assert dag_and_conf("/api/v2/backfills", body(dag_id="reconcile", dag_run_conf={"b": 2})) == ("reconcile", {"b": 2})


@pytest.mark.parametrize(("path", "raw"), [
    ("/api/v2/dags/preflight/dagRuns", b"not json"),
    ("/api/v2/dags/preflight/dagRuns", b"[1, 2]"),
    ("/api/v2/dags/preflight/dagRuns", body(logical_date=None)),
    ("/api/v2/dags/preflight/dagRuns", body(conf={})),
    ("/api/v2/dags/preflight/dagRuns", body(conf="dry_run")),
    ("/api/v2/backfills", body(dag_id=["reconcile"], dag_run_conf={"b": 2})),
    ("/api/v2/backfills", body(dag_run_conf={"b": 2})),
])
def test_anything_else_is_left_to_airflow(path, raw):
    """Malformed bodies and empty confs go on untouched: Airflow's own validation answers them."""
    assert dag_and_conf(path, raw) is None
