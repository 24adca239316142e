"""A cutover decided in the Airflow UI, in a real browser, on a real scheduler.

A throwaway estate is brought to `soak` with the engine; an api-server, a scheduler
(LocalExecutor) and a dag-processor run the repo's DAGs against it. Each cutover run
gathers its evidence and stops at `approve_cutover`; headless Chromium finds the
request under Browse → Required Actions, reads the evidence and answers it. A
rejected cutover flips nothing; an approved one flips the read path, and the flip
task's Rendered Template tab shows the UPDATE that ran with its quoted identifiers.
Screenshots land in artifacts/ui/.
"""

from __future__ import annotations

import json
import os
import secrets

import psycopg
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from migration_engine.local.cluster import AirflowCluster
from migration_engine.local.servers import wait_until
from tests.integration.lifecycle_support import (
    flags,
    phase,
)
from tests.integration.test_airflow_ui import CHROMIUM, CHROMIUM_ARGS, DAGS, SCREENSHOTS, shot, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

USER = "approver"
CUTOVER_CONF = {"confirm": "CUTOVER", "dry_run": False, "app_switch_seconds": 0, "min_soak_hours": 0, "min_clean_reconciles": 1}


@pytest.fixture(scope="module")
def airflow(migrated, estate, tmp_path_factory):
    home = tmp_path_factory.mktemp("approval_ui_home")
    password = secrets.token_urlsafe(16)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USER: password}))
    cluster = AirflowCluster(home=home, dags_folder=DAGS, executor="LocalExecutor", workers=0, extra_env={
        **estate.airflow_env(),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        # Only the cutover is under test: the hourly reconcile must not start on its own.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "MIGRATION_ARTIFACT_DIR": str(home / "artifacts"),
        # A handful of task processes is plenty for one run at a time on a shared machine.
        "AIRFLOW__CORE__PARALLELISM": "4",
    })
    try:
        cluster.start(f"pgmig_approval_ui_{os.getpid()}")
        yield cluster, password
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def page(airflow):
    cluster, password = airflow
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{cluster.api_port}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1700})
            sign_in(tab, base, USER, password)
            yield tab
        finally:
            browser.close()


def task_state(cluster: AirflowCluster, run_id: str, task_id: str) -> str | None:
    with psycopg.connect(cluster.airflow.metadata_db.replace("postgresql+psycopg2://", "postgresql://", 1)) as conn:
        row = conn.execute("SELECT state FROM task_instance WHERE dag_id = 'cutover' AND run_id = %s AND task_id = %s",
                           (run_id, task_id)).fetchone()
    return row[0] if row else None


def task_logs(cluster: AirflowCluster, run_id: str, task_id: str) -> str:
    """Every attempt's log of one task of the run, for a failure message."""
    folder = cluster.home / "logs" / "dag_id=cutover" / f"run_id={run_id}" / f"task_id={task_id}"
    return "\n".join(f"--- {path.name}\n{path.read_text()[-4000:]}" for path in sorted(folder.glob("*.log")))


def pause_seen_by_the_scheduler(cluster: AirflowCluster, run_id: str) -> bool:
    """Airflow 3.3 race: an answer given before the scheduler has processed the executor's event for the try
    that paused re-queues the task first, and the late event then marks it failed ("finished with state
    success, but the task instance's state attribute is queued"). A person takes longer than that."""
    seen = (f"Received executor event with state success for task instance TaskInstanceKey(dag_id='cutover', "
            f"task_id='approve_cutover', run_id='{run_id}'")
    return seen in (cluster.home / "scheduler.log").read_text()


def trigger_and_wait_for_the_request(cluster: AirflowCluster) -> str:
    run_id = cluster.trigger("cutover", json.dumps(CUTOVER_CONF))
    assert wait_until(lambda: task_state(cluster, run_id, "approve_cutover") == "awaiting_input", timeout=600, interval=2), (
        f"approve_cutover never waited for input; see {cluster.home / 'scheduler.log'}")
    assert wait_until(lambda: pause_seen_by_the_scheduler(cluster, run_id), timeout=300, interval=1), (
        f"the scheduler never processed the pause of approve_cutover; see {cluster.home / 'scheduler.log'}")
    return run_id


def answer_under_required_actions(page: Page, base: str, run_id: str, option: str, screenshot: str) -> None:
    """Browse → Required Actions, open this run's request, read the evidence, click ``option``."""
    page.goto(f"{base}/required_actions")
    page.get_by_role("link", name="approve_cutover").first.wait_for()
    page.goto(f"{base}/dags/cutover/runs/{run_id}/tasks/approve_cutover/required_actions")
    expect(page.get_by_text("cut over? The apps start reading from the target")).to_be_visible()
    # The evidence gathered before the request: the final drift per table and what approving flips.
    expect(page.get_by_text("Final reconciliation: 0 row(s) left unrepaired").first).to_be_visible()
    expect(page.get_by_text("recruiter.users").first).to_be_visible()
    expect(page.get_by_text("→ target").first).to_be_visible()
    shot(page, screenshot)
    page.get_by_role("button", name=option, exact=True).click()


def test_a_rejected_cutover_flips_nothing(soaking, page, airflow, estate, manifest):
    cluster, _ = airflow
    before = flags(estate, manifest)
    run_id = trigger_and_wait_for_the_request(cluster)
    answer_under_required_actions(page, f"http://127.0.0.1:{cluster.api_port}", run_id, "Reject", "10_cutover_reject")
    assert cluster.wait_for_run("cutover", run_id) == "success", task_logs(cluster, run_id, "approve_cutover")
    assert task_state(cluster, run_id, "sync_sequences") == "skipped"
    assert task_state(cluster, run_id, "flip_read_path_to_target") == "skipped"
    assert task_state(cluster, run_id, "record_cut_over") == "skipped"
    assert flags(estate, manifest) == before
    assert {f["primary_side"] for f in before.values()} == {"source"}
    assert phase(estate) == "soak"


def test_an_approved_cutover_flips_the_read_path_and_shows_the_sql_that_ran(soaking, page, airflow, estate, manifest):
    cluster, _ = airflow
    base = f"http://127.0.0.1:{cluster.api_port}"
    run_id = trigger_and_wait_for_the_request(cluster)
    answer_under_required_actions(page, base, run_id, "Approve", "11_cutover_approve")
    assert cluster.wait_for_run("cutover", run_id) == "success", (
        cluster.task_hosts("cutover", run_id), task_logs(cluster, run_id, "approve_cutover"))
    assert phase(estate) == "cut_over"
    assert {(f["primary_side"], f["dual_write"]) for f in flags(estate, manifest).values()} == {("target", True)}

    page.goto(f"{base}/dags/cutover/runs/{run_id}/tasks/flip_read_path_to_target/rendered_templates")
    rendered = page.locator("pre").filter(has_text="read_path")
    expect(rendered).to_contain_text('UPDATE "migration_control".read_path')
    expect(rendered).to_contain_text("SET primary_side = %(side)s")
    expect(rendered).to_contain_text('"side": "target"')
    shot(page, "12_flip_rendered_template")
