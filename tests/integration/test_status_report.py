"""The status report from real ledger rows: phases advanced on the estate's target, chunks
copied by the copier, a real verification, and reconcile runs over injected drift; the
drift chart is parsed back and checked run by run, and a PNG is left for a person."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from migration_engine import status_report
from tests.integration.backfill_support import source_sql, target_sql
from tests.integration.status_support import PHASES, RECONCILED, build_migration

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO / "artifacts" / "status_report"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def migration(estate, manifest):
    return build_migration(estate, manifest)


@pytest.fixture(scope="module")
def report(estate, manifest, migration, tmp_path_factory) -> str:
    path = status_report.write(estate.target_endpoint(), manifest, tmp_path_factory.mktemp("status"))
    assert path.name == status_report.REPORT_FILE
    return path.read_text()


def chart(html: str) -> ET.Element:
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.DOTALL)
    assert len(svgs) == 1, f"expected one inline SVG chart, found {len(svgs)}"
    return ET.fromstring(svgs[0])


def test_the_chart_has_one_group_per_reconcile_run_with_its_ledger_values(report, migration):
    groups = [g for g in chart(report).iter(f"{SVG}g") if g.get("class") == "run"]
    assert [g.get("data-run-id") for g in groups] == list(migration["runs"])
    for group in groups:
        results = migration["runs"][group.get("data-run-id")]
        expected = {"drifted": sum(r.drifted for r in results), "repaired": sum(r.repaired for r in results),
                    "in_flight": sum(r.in_flight for r in results), "unrepaired": sum(r.unrepaired for r in results)}
        bars = {rect.get("class").split()[1]: rect for rect in group.iter(f"{SVG}rect")}
        assert {k: int(bars[k].get("data-value")) for k in expected} == expected
        assert {k: int(group.get(f"data-{k.replace('_', '-')}")) for k in expected} == expected
        clean = all(r.clean for r in results)
        assert group.get("data-clean") == str(clean).lower()
        assert [c.get("class") for c in group.iter(f"{SVG}circle")] == [f"status {'clean' if clean else 'unclean'}"]
    # The drift injected: 3 + 2 keys repaired; nothing; 4 keys over the cap of 2, none repaired (the scan
    # stops counting past the cap); the same 4 repaired.
    totals = [(int(g.get("data-drifted")), int(g.get("data-repaired")), int(g.get("data-unrepaired"))) for g in groups]
    assert totals[:2] == [(5, 5, 0), (0, 0, 0)] and totals[3] == (4, 4, 0)
    assert totals[2][1] == 0 and totals[2][0] == totals[2][2] > 2


def test_bar_heights_are_proportional_to_the_values(report):
    rects = [r for r in chart(report).iter(f"{SVG}rect") if (r.get("class") or "").startswith("bar ")]
    scales = [float(r.get("height")) / int(r.get("data-value")) for r in rects if int(r.get("data-value"))]
    assert scales and min(scales) > 0
    # Heights are written to 0.1 px: a bar of value 1 or more is off by at most 5 % of a unit.
    assert max(scales) - min(scales) < 0.05 * min(scales)
    assert all(float(r.get("height")) == 0 for r in rects if not int(r.get("data-value")))


def test_the_drift_ledger_holds_what_the_chart_shows(estate, manifest, report):
    rows = target_sql(estate, "SELECT run_id, sum(drifted), sum(unrepaired) FROM migration_control.reconcile_runs "
                              "GROUP BY run_id ORDER BY run_id")
    groups = {g.get("data-run-id"): g for g in chart(report).iter(f"{SVG}g") if g.get("class") == "run"}
    assert {r[0]: (int(r[1]), int(r[2])) for r in rows} == {
        k: (int(g.get("data-drifted")), int(g.get("data-unrepaired"))) for k, g in groups.items()}


def test_the_phase_and_its_history_are_shown(report):
    assert re.search(r'id="current-phase" data-current="dual_write"', report)
    history = re.search(r'<table class="history">(.*?)</table>', report, re.DOTALL).group(1)
    for phase, dag_id in PHASES:
        assert f"<td>{phase}</td>" in history and f"manual__{dag_id}" in history
    assert "<title>credity migration: dual write</title>" in report


def test_backfill_progress_per_table_from_the_chunk_ledger(report, migration, manifest):
    rows = dict(re.findall(r'<tr class="backfill" data-table="([^"]+)" (data-chunks-done="\d+" data-chunks-total="\d*" data-rows="\d+")', report))
    assert set(rows) == {t.qualified for t in manifest.tables}
    for name, copied in migration["copied"].items():
        assert rows[name] == f'data-chunks-done="{copied["done"]}" data-chunks-total="{copied["planned"]}" data-rows="{copied["rows"]}"'
    assert migration["copied"]["wallet.activities"]["done"] < migration["copied"]["wallet.activities"]["planned"]
    assert rows["issuer.tenants"] == 'data-chunks-done="0" data-chunks-total="" data-rows="0"'
    rates = {name: (float(rate) if rate else None, float(eta) if eta else None) for name, rate, eta in re.findall(
        r'<tr class="backfill" data-table="([^"]+)" [^>]*data-rows-per-s="([\d.]*)" data-eta-s="([\d.]*)"', report)}
    for name, copied in migration["copied"].items():
        rate, eta = rates[name]
        assert rate > 0, name
        # What is left, at the rate so far: nothing for a finished table, some time for the half-copied one.
        assert (eta == 0) == (copied["done"] == copied["planned"]), (name, eta)
    assert rates["issuer.tenants"] == (None, None)


def test_latest_verification_per_table(report, migration):
    assert "Verification <span class=\"FAILED\">FAILED</span>" in report
    for result in migration["verification"]["tables"]:
        row = re.search(rf'<tr class="verify (ok|fail)" data-table="{re.escape(result["table"])}" '
                        rf'data-checksum-match="(true|false)">(.*?)</tr>', report)
        assert row, result["table"]
        assert row.group(1) == ("ok" if result["ok"] else "fail")
        assert row.group(2) == str(result["checksum_match"]).lower()
        assert f'<td class="num">{result["rows_source"]:,}</td><td class="num">{result["rows_target"]:,}</td>' in row.group(3)
    by_table = {r["table"]: r for r in migration["verification"]["tables"]}
    assert by_table["wallet.users"]["ok"] and not by_table["wallet.activities"]["ok"]


def test_no_secret_or_sensitive_value_in_the_report(estate, report):
    for secret in estate.secrets():
        assert secret not in report
    tokens = source_sql(estate, "wallet", "SELECT oauth_access_token, oauth_refresh_token FROM platform_connections "
                                          "WHERE oauth_access_token IS NOT NULL LIMIT 20")
    passwords = source_sql(estate, "wallet", "SELECT password FROM users LIMIT 20")
    values = {v for row in tokens + passwords for v in row if v and len(v) >= 8}
    assert values, "the generated source should hold sensitive values to look for"
    assert not [v for v in values if v in report]
    assert "postgresql://" not in report and "password" not in report.lower()


def test_report_is_self_contained(report):
    assert not re.search(r"<script|<link|\bsrc=|@import|url\(", report)


def test_collect_only_reads_and_a_fresh_database_reads_as_not_started(estate, manifest, tmp_path):
    source = estate.source_endpoint("issuer")
    html = status_report.write(source, manifest, tmp_path).read_text()
    assert 'data-current="not_started"' in html and "No reconciliation run recorded yet" in html
    assert source_sql(estate, "issuer", "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (manifest.control_schema,)) == [(0,)]


def test_cli_writes_the_report_from_airflow_connections(estate, tmp_path):
    env = {**os.environ, **estate.airflow_env(), "PYTHONPATH": str(REPO / "plugins")}
    proc = subprocess.run([sys.executable, "-m", "migration_engine.status_report", "--directory", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == tmp_path / status_report.REPORT_FILE
    assert 'data-current="dual_write"' in (tmp_path / status_report.REPORT_FILE).read_text()
    missing = {k: v for k, v in env.items() if k != "AIRFLOW_CONN_CREDITY_TARGET_DIRECT"}
    proc = subprocess.run([sys.executable, "-m", "migration_engine.status_report", "--directory", str(tmp_path)],
                          env=missing, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 1 and "AIRFLOW_CONN_CREDITY_TARGET_DIRECT" in proc.stderr


def test_screenshot_of_the_report_for_a_person(report, tmp_path):
    """Rendered by the system Chromium; fails loudly when it cannot start."""
    page = tmp_path / status_report.REPORT_FILE
    page.write_text(report)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    png = SCREENSHOT_DIR / "migration-status.png"
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
             f"--screenshot={png}", "--window-size=1280,2000", page.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode == 0 and png.stat().st_size > 10_000, proc.stderr[-2000:]


@pytest.mark.airflow
def test_a_refused_run_still_writes_the_report_and_keeps_the_last_verification(estate, migration, airflow_home, tmp_path):
    artifacts = tmp_path / "artifacts"
    result = airflow_home.run_dag("verify", extra_env={**estate.airflow_env(), "MIGRATION_ARTIFACT_DIR": str(artifacts)})
    assert result.returncode != 0
    assert result.state_of("check_ledger_phase") == "failed", result.task_states
    assert result.state_of("compare_tables") == "upstream_failed"
    assert result.state_of("write_status_report") == "success", result.output[-4000:]
    html = (artifacts / "status" / "latest" / status_report.REPORT_FILE).read_text()
    assert 'data-current="dual_write"' in html
    assert "Run manual__verify of verify" in html


@pytest.mark.airflow
def test_the_reconcile_dag_rewrites_the_report_with_its_own_run(estate, manifest, migration, airflow_home, tmp_path):
    """Last in this module: the run may move the ledger on (its first clean run starts the soak)."""
    artifacts = tmp_path / "artifacts"
    result = airflow_home.run_dag("reconcile", {"tables": list(RECONCILED), "grace_seconds": 0},
                                  extra_env={**estate.airflow_env(), "MIGRATION_ARTIFACT_DIR": str(artifacts)})
    assert result.succeeded, result.output[-4000:]
    assert result.state_of("write_status_report") == "success"
    html = (artifacts / "status" / "latest" / status_report.REPORT_FILE).read_text()
    groups = [g for g in chart(html).iter(f"{SVG}g") if g.get("class") == "run"]
    latest = target_sql(estate, "SELECT run_id FROM migration_control.reconcile_runs ORDER BY finished_at DESC LIMIT 1")[0][0]
    assert [g.get("data-run-id") for g in groups] == [*migration["runs"], latest]
    assert groups[-1].get("data-clean") == "true"
    current = target_sql(estate, "SELECT current_phase FROM migration_control.status")[0][0]
    assert f'data-current="{current}"' in html
    for secret in estate.secrets():
        assert secret not in html
