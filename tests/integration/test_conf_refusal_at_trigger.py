"""A conf key a DAG does not declare is refused when the run is triggered, by the API server.

A real api-server, scheduler and dag-processor serve three DAGs from a fresh metadata DB:
the package's `preflight` and `reconcile` (tagged `strict-conf`) and a DAG of someone
else's without that tag. Triggers go through the REST API with a token from the auth
manager's own login route, and through the UI's trigger dialog in headless Chromium. A
refused trigger must leave no row in `dag_run` (nor `backfill`); the DAGs stay paused,
so an accepted run is created and queued but nothing touches a database.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil

import psycopg
import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from migration_engine.local.cluster import AirflowCluster
from migration_engine.local.servers import wait_until
from tests.integration.test_airflow_ui import CHROMIUM, CHROMIUM_ARGS, DAGS, shot, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

TRIGGERER, VIEWER = "trigger-check", "viewer-check"
# A value that must never reach a log: only key names may.
CANARY = "canary-conf-value-7c1f"
PACKAGE_DAGS = ("preflight", "reconcile")
OTHER_DAG = "someone_elses_dag"
OTHER_DAG_FILE = f'''
import pendulum
from airflow.sdk import DAG, Param
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("{OTHER_DAG}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), tags=["other-team"],
         params={{"size": Param(1, type="integer")}}):
    EmptyOperator(task_id="nothing")
'''
PREFLIGHT_REFUSAL = ("conf keys 'dry_run', 'fresh_backupp' are not a Param of DAG 'preflight', which declares "
                     "backup_dir, backup_jobs, fresh_backup, max_age_hours. It has no dry run: the README's Params "
                     "section lists the DAGs that have one. No run was created; trigger it again without them.")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    home = tmp_path_factory.mktemp("conf_refusal_home")
    dags = home / "dags"
    dags.mkdir()
    for dag_id in PACKAGE_DAGS:
        shutil.copy(DAGS / f"{dag_id}.py", dags)
    (dags / f"{OTHER_DAG}.py").write_text(OTHER_DAG_FILE)
    passwords = {TRIGGERER: secrets.token_urlsafe(16), VIEWER: secrets.token_urlsafe(16)}
    (home / "passwords.json").write_text(json.dumps(passwords))
    cluster = AirflowCluster(home=home, dags_folder=dags, executor="LocalExecutor", workers=0, extra_env={
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{TRIGGERER}:admin,{VIEWER}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        # Runs are created, never executed: no DAG here may reach a database.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    })
    try:
        cluster.start(f"pgmig_conf_refusal_{os.getpid()}")
        expected = {*PACKAGE_DAGS, OTHER_DAG}
        assert wait_until(lambda: expected <= set(metadata(cluster, "SELECT dag_id FROM serialized_dag")),
                          timeout=240, interval=2), f"DAGs not serialized; see {home / 'dag-processor.log'}"
        yield cluster, passwords
    finally:
        cluster.stop()


def metadata(cluster: AirflowCluster, query: str, params: tuple = ()) -> list:
    with psycopg.connect(cluster.airflow.metadata_db.replace("postgresql+psycopg2://", "postgresql://", 1)) as conn:
        return [row[0] if len(row) == 1 else row for row in conn.execute(query, params)]


def runs_of(cluster: AirflowCluster, dag_id: str) -> list:
    return metadata(cluster, "SELECT run_id, conf FROM dag_run WHERE dag_id = %s ORDER BY id", (dag_id,))


def base(cluster: AirflowCluster) -> str:
    return f"http://127.0.0.1:{cluster.api_port}"


@pytest.fixture(scope="module")
def tokens(airflow):
    """A JWT per user from the auth manager's own login route, as a script would get one."""
    cluster, passwords = airflow
    result = {}
    for user, password in passwords.items():
        answer = requests.post(f"{base(cluster)}/auth/token", json={"username": user, "password": password}, timeout=60)
        assert answer.status_code == 201, answer.text
        result[user] = answer.json()["access_token"]
    return result


def trigger(cluster: AirflowCluster, dag_id: str, conf: dict, token: str | None, **fields) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{base(cluster)}/api/v2/dags/{dag_id}/dagRuns", headers=headers, timeout=60,
                         json={"logical_date": None, "conf": conf, **fields})


def test_an_undeclared_key_is_refused_with_400_naming_it_and_no_run_is_created(airflow, tokens):
    cluster, _ = airflow
    # Other tests of the module create runs of their own, in whatever order they run.
    before = runs_of(cluster, "preflight")
    answer = trigger(cluster, "preflight", {"dry_run": True, "fresh_backupp": CANARY, "fresh_backup": True},
                     tokens[TRIGGERER], dag_run_id="refused_run")
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"detail": PREFLIGHT_REFUSAL, "dag_id": "preflight",
                             "undeclared_conf_keys": ["dry_run", "fresh_backupp"]}
    assert runs_of(cluster, "preflight") == before
    log = (cluster.home / "api-server.log").read_text()
    assert "undeclared conf keys dry_run, fresh_backupp" in log
    assert CANARY not in log


def test_only_declared_keys_create_the_run(airflow, tokens):
    cluster, _ = airflow
    conf = {"fresh_backup": True, "max_age_hours": 12}
    answer = trigger(cluster, "preflight", conf, tokens[TRIGGERER], dag_run_id="accepted_run")
    assert answer.status_code == 200, answer.text
    assert answer.json()["conf"] == conf
    assert ("accepted_run", conf) in runs_of(cluster, "preflight")


def test_airflow_still_checks_the_values_of_declared_params(airflow, tokens):
    cluster, _ = airflow
    answer = trigger(cluster, "preflight", {"max_age_hours": "soon"}, tokens[TRIGGERER], dag_run_id="bad_value")
    assert answer.status_code == 400, answer.text
    assert "undeclared_conf_keys" not in answer.json() and "max_age_hours" in answer.json()["detail"]
    assert "bad_value" not in [run_id for run_id, _ in runs_of(cluster, "preflight")]


def test_a_backfill_with_an_undeclared_key_is_refused(airflow, tokens):
    cluster, _ = airflow
    before = runs_of(cluster, "reconcile")
    answer = requests.post(f"{base(cluster)}/api/v2/backfills", headers={"Authorization": f"Bearer {tokens[TRIGGERER]}"},
                           timeout=60, json={"dag_id": "reconcile", "from_date": "2026-06-01T00:00:00Z",
                                             "to_date": "2026-06-01T03:00:00Z", "dag_run_conf": {"dry_runn": True}})
    assert answer.status_code == 400, answer.text
    assert answer.json()["undeclared_conf_keys"] == ["dry_runn"]
    assert answer.json()["detail"].startswith("conf key 'dry_runn' is not a Param of DAG 'reconcile', which declares ")
    assert metadata(cluster, "SELECT id FROM backfill") == []
    assert runs_of(cluster, "reconcile") == before


def test_a_dag_without_the_tag_is_left_alone(airflow, tokens):
    cluster, _ = airflow
    answer = trigger(cluster, OTHER_DAG, {"size": 2, "anything": "goes"}, tokens[TRIGGERER], dag_run_id="other_run")
    assert answer.status_code == 200, answer.text
    assert ("other_run", {"size": 2, "anything": "goes"}) in runs_of(cluster, OTHER_DAG)


@pytest.mark.parametrize(("user", "status"), [(None, 401), (VIEWER, 403)])
def test_a_caller_who_may_not_trigger_gets_airflows_answer_and_learns_no_param(airflow, tokens, user, status):
    cluster, _ = airflow
    answer = trigger(cluster, "preflight", {"dry_run": True}, tokens.get(user), dag_run_id=f"by_{user}")
    assert answer.status_code == status, answer.text
    assert "declares" not in answer.text and "fresh_backup" not in answer.text
    assert f"by_{user}" not in [run_id for run_id, _ in runs_of(cluster, "preflight")]


@pytest.fixture(scope="module")
def page(airflow):
    cluster, passwords = airflow
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1700})
            sign_in(tab, base(cluster), TRIGGERER, passwords[TRIGGERER])
            yield tab
        finally:
            browser.close()


def open_trigger_dialog(page, cluster: AirflowCluster, dag_id: str):
    """The DAG's Trigger dialog, set not to unpause the DAG: an accepted run is created and stays queued."""
    page.goto(f"{base(cluster)}/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(f"Trigger Dag - {dag_id}")).to_be_visible()
    unpause = dialog.get_by_role("checkbox", name=f"Unpause {dag_id} on trigger")
    expect(unpause).to_be_checked()
    # Chakra draws its own box over the input: click the label, as a person would.
    dialog.get_by_text(f"Unpause {dag_id} on trigger").click()
    expect(unpause).not_to_be_checked()
    return dialog


def test_the_ui_trigger_dialog_shows_the_refusal_and_creates_no_run(page, airflow):
    cluster, _ = airflow
    before = runs_of(cluster, "reconcile")
    dialog = open_trigger_dialog(page, cluster, "reconcile")
    dialog.get_by_text("Advanced Options").click()
    # The conf as JSON, in the dialog's code editor (Monaco): replace what the form put there.
    dialog.locator(".monaco-editor .view-lines").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text('{"dry_runn": true}')
    # The editor closed some braces and quotes itself, after the cursor: drop them.
    page.keyboard.press("Shift+End")
    page.keyboard.press("Delete")
    expect(dialog.locator(".monaco-editor .view-lines")).to_have_text('{"dry_runn": true}')
    dialog.get_by_role("button", name="Trigger").click()
    expect(dialog.get_by_text("400 Bad Request")).to_be_visible()
    expect(dialog.get_by_text("conf key 'dry_runn' is not a Param of DAG 'reconcile', which declares ")).to_be_visible()
    shot(page, "20_trigger_refused_undeclared_conf")
    assert runs_of(cluster, "reconcile") == before


def test_the_ui_trigger_dialog_with_its_form_creates_the_run(page, airflow):
    cluster, _ = airflow
    before = runs_of(cluster, "reconcile")
    dialog = open_trigger_dialog(page, cluster, "reconcile")
    dialog.get_by_role("button", name="Trigger").click()
    expect(dialog).to_be_hidden()
    assert wait_until(lambda: len(runs_of(cluster, "reconcile")) == len(before) + 1, timeout=60, interval=1)
    newest = metadata(cluster, "SELECT triggered_by, conf FROM dag_run WHERE dag_id = 'reconcile' ORDER BY id DESC LIMIT 1")
    triggered_by, conf = newest[0]
    assert triggered_by == "UI"
    assert set(conf) == {"tables", "dry_run", "repair_cap", "grace_seconds", "max_unrepaired_rows", "max_latency_increase"}, conf
