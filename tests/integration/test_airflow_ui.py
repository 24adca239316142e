"""The Airflow UI in a real browser: the API server, scheduler and dag-processor serve the
repo's dags/ and plugins/ from a fresh metadata DB; headless Chromium (the Debian package,
driven by Playwright) signs in, finds every DAG listed with no import error, opens the cutover
trigger form with its confirm and dry-run fields, and opens the migration status page from the
UI's navigation, read live from the ledgers of a throwaway estate's target (written by the
engine's own functions: phases, chunks, a verification, reconcile runs, a rollback); anonymous
requests to that page get nothing. Screenshots land in artifacts/ui/.

Nothing is skipped: a missing browser or a server that does not start fails the test.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from migration_engine.local.cluster import AirflowCluster
from migration_engine.local.servers import wait_until
from tests.integration.status_support import advance, build_migration

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
EXPECTED_DAGS = sorted(p.stem for p in DAGS.glob("*.py") if not p.name.startswith("_"))
SCREENSHOTS = REPO / "artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
USER = "ui-check"
STATUS_PATH = "migration-status/"
SMOKE_FAILED = ["wallet_recent_activity"]
UI_TIMEOUT_MS = 60_000
# expect() keeps its own 5 s default, too short for a UI sharing two cores with other test modules.
expect.set_options(timeout=UI_TIMEOUT_MS)


@pytest.fixture(scope="module")
def ledgers(estate, manifest):
    """The target's ledgers of a migration past one failed cutover: soak, cut over, rolled back
    by the cutover's smoke checks, back to soak (the status page's subject)."""
    built = build_migration(estate, manifest)
    advance(estate, manifest, "soak", "reconcile")
    advance(estate, manifest, "cut_over", "cutover", "manual__cutover_1", {"smoke_failed": SMOKE_FAILED})
    advance(estate, manifest, "rolled_back", "cutover", "manual__cutover_1",
            {"reason": "smoke checks failed", "failed": SMOKE_FAILED})
    advance(estate, manifest, "soak", "reconcile", "manual__reconcile_after_rollback")
    return built


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory, estate, ledgers):
    """API server, scheduler and dag-processor on a free port; a user whose password the test sets.
    The estate's connections are the cluster's, so the status page reads its target."""
    home = tmp_path_factory.mktemp("airflow_ui_home")
    password = secrets.token_urlsafe(16)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USER: password}))
    cluster = AirflowCluster(home=home, dags_folder=DAGS, workers=0, extra_env={
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        # Only the UI is under test: the hourly reconcile must not start runs nobody executes.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        **estate.airflow_env(),
    })
    try:
        cluster.start(f"pgmig_ui_test_{os.getpid()}")
        url = cluster.airflow.metadata_db.replace("postgresql+psycopg2://", "postgresql://", 1)

        def all_parsed() -> bool:
            with psycopg.connect(url) as conn:
                parsed = {r[0] for r in conn.execute("SELECT dag_id FROM serialized_dag")}
            return set(EXPECTED_DAGS) <= parsed

        assert wait_until(all_parsed, timeout=240, interval=2), f"DAGs not serialized; see {home / 'dag-processor.log'}"
        with psycopg.connect(url) as conn:
            errors = conn.execute("SELECT filename, stacktrace FROM import_error").fetchall()
        yield {"base": f"http://127.0.0.1:{cluster.api_port}", "password": password, "import_errors": errors}
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def page(airflow_ui):
    """A Chromium tab signed in through the login form."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base = airflow_ui["base"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1700})
            sign_in(tab, base, USER, airflow_ui["password"], screenshot="01_sign_in")
            yield tab
        finally:
            browser.close()


def sign_in(tab: Page, base: str, user: str, password: str, screenshot: str | None = None) -> None:
    """Through the login form the UI redirects to, as a person would."""
    tab.set_default_timeout(UI_TIMEOUT_MS)
    tab.goto(f"{base}/")
    expect(tab).to_have_url(re.compile(r"/auth/login"))
    tab.get_by_label("Username").fill(user)
    tab.get_by_label("Password").fill(password)
    if screenshot:
        shot(tab, screenshot)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(f"{base}/")


def api(page: Page, airflow_ui, path: str) -> dict:
    """GET from the REST API with the session's own token (the cookie the UI signs in with)."""
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "_token")
    answer = page.request.get(f"{airflow_ui['base']}/api/v2/{path}", headers={"Authorization": f"Bearer {token}"})
    assert answer.ok, answer.text()
    return answer.json()


def shot(page: Page, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 10_000
    return path


def test_signed_in_home_shows_no_import_error(page, airflow_ui):
    page.goto(f"{airflow_ui['base']}/")
    expect(page.get_by_text("Active Dags")).to_be_visible()
    expect(page.get_by_text("Dag Processor")).to_be_visible()
    # The dashboard shows an import-error button only once its queries have answered.
    page.wait_for_load_state("networkidle")
    expect(page.get_by_text(re.compile("Dag Import Error", re.IGNORECASE))).to_have_count(0)
    shot(page, "02_home")


def test_every_dag_is_listed_without_import_errors(page, airflow_ui):
    assert airflow_ui["import_errors"] == []
    page.goto(f"{airflow_ui['base']}/dags")
    expect(page.get_by_text(re.compile(r"^\d+ Dags$"))).to_have_text(f"{len(EXPECTED_DAGS)} Dags")
    # Each DAG card's title link (tag links share the names, so the UI's own test id picks the titles).
    expect(page.get_by_test_id("dag-id")).to_have_text(EXPECTED_DAGS)
    expect(page.get_by_text(re.compile("Dag Import Error", re.IGNORECASE))).to_have_count(0)
    # The API the UI itself calls agrees: no import error recorded for any file.
    assert api(page, airflow_ui, "importErrors")["total_entries"] == 0
    shot(page, "03_dag_list")


def test_cutover_trigger_form_shows_confirm_and_dry_run_with_their_descriptions(page, airflow_ui):
    params = api(page, airflow_ui, "dags/cutover/details")["params"]
    described = {name: params[name]["description"] for name in ("confirm", "dry_run")}
    assert all(described.values()), described
    page.goto(f"{airflow_ui['base']}/dags/cutover")
    page.get_by_role("button", name="Trigger").first.click()
    form = page.get_by_role("dialog")
    expect(form.get_by_text("Trigger Dag - cutover")).to_be_visible()
    expect(form.get_by_text("Run Parameters")).to_be_visible()
    # The form builds one field per Param, named element_<param>, described by the Param's description.
    confirm = form.locator("input[name=element_confirm]")
    expect(confirm).to_be_visible()
    expect(confirm).to_have_value("")
    expect(confirm).to_have_accessible_description(described["confirm"])
    expect(form.get_by_text(params["confirm"]["schema"]["title"], exact=True)).to_be_visible()
    assert "CUTOVER" in described["confirm"]
    dry_run = form.get_by_role("checkbox", name="Dry run")
    expect(dry_run).to_have_attribute("name", "element_dry_run")
    expect(dry_run).to_have_accessible_description(described["dry_run"])
    # On by default: a careless click on Trigger changes nothing.
    expect(dry_run).to_be_checked()
    confirm.fill("CUTOVER")
    shot(page, "04_cutover_trigger_form")


def test_status_page_opens_from_the_navigation_with_the_ledgers(page, airflow_ui, manifest, ledgers):
    assert api(page, airflow_ui, "plugins/importErrors")["total_entries"] == 0
    assert "migration_status" in {p["name"] for p in api(page, airflow_ui, "plugins")["plugins"]}
    page.goto(f"{airflow_ui['base']}/")
    page.get_by_role("link", name="Migration", exact=True).click()
    expect(page).to_have_url(re.compile(r"/plugin/migration-status"))
    status = page.frame_locator("iframe[title='Migration']")
    expect(status.locator("#current-phase")).to_have_attribute("data-current", "soak")
    expect(status.locator("h1")).to_have_text("credity migration: soak")
    # Every table of the manifest, with the chunks the copier recorded for the three it copied.
    expect(status.locator("tr.backfill")).to_have_count(len(manifest.tables))
    for name, copied in ledgers["copied"].items():
        row = status.locator(f"tr.backfill[data-table='{name}']")
        expect(row).to_have_attribute("data-chunks-done", str(copied["done"]))
        expect(row).to_have_attribute("data-rows-per-s", re.compile(r"^\d+(\.\d+)?$"))
    expect(status.get_by_role("columnheader", name="time left")).to_be_visible()
    expect(status.locator("tr.verify")).to_have_count(len(ledgers["verification"]["tables"]))
    expect(status.locator("svg.drift-chart g.run")).to_have_count(len(ledgers["runs"]))
    rollback = status.locator("tr.rollback")
    expect(rollback).to_have_count(1)
    expect(rollback).to_contain_text(f"smoke checks failed: {SMOKE_FAILED[0]}")
    history = status.locator("table.history")
    for phase in ("cut_over", "rolled_back", "soak"):
        expect(history.get_by_role("cell", name=phase, exact=True).first).to_be_visible()
    shot(page, "05_migration_status")


def anonymous_get(url: str, headers: dict | None = None) -> tuple[int, str]:
    """A request with no session cookie (urllib keeps none)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_status_page_gives_anonymous_requests_nothing(page, airflow_ui, ledgers):
    url = f"{airflow_ui['base']}/{STATUS_PATH}"
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "_token")
    signed_in = page.request.get(url, headers={"Authorization": f"Bearer {token}"})
    assert signed_in.status == 200 and 'data-current="soak"' in signed_in.text()
    # Framed by the Airflow UI only, never cached.
    assert "frame-ancestors 'self'" in signed_in.headers["content-security-policy"]
    assert signed_in.headers["cache-control"] == "no-store"
    for headers, refused_with in (({}, 401), ({"Authorization": "Bearer not-a-token"}, 403),
                                  ({"Cookie": "_token=not-a-token"}, 403)):
        status, body = anonymous_get(url, headers)
        assert status == refused_with, (headers, status, body[:200])
        assert "current-phase" not in body and "wallet." not in body and "soak" not in body, body[:200]
