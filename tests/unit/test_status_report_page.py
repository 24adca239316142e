"""The status page's pure parts: the backfill's rate and time left, the rollbacks
drawn from the phase history and the drift ledger, and how the page shows them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from migration_engine.chunk_ledger import estimate
from migration_engine.status_report import list_rollbacks, render_html

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize(("done", "total", "rows", "wall", "expected"), [
    # 4 of 10 chunks, 4000 rows in 20 s: 200 rows/s; 6 chunks of 1000 rows left, 30 s.
    (4, 10, 4000, 20.0, (200.0, 30.0)),
    (10, 10, 10_000, 50.0, (200.0, 0.0)),
    # Nothing copied yet: no rate, no estimate, but the work is not done.
    (0, 10, 0, 0, (None, None)),
    # No plan (total 0) and chunks recorded: a rate, and nothing left to count down.
    (3, 0, 300, 3.0, (100.0, 0.0)),
    # A fast table with work left: 0.01 s rounds up to 0.1, never to the 0.0 of a finished one.
    (2, 4, 1000, 0.01, (100_000.0, 0.1)),
])
def test_rate_and_time_left(done, total, rows, wall, expected):
    assert estimate(done, total, rows, wall) == expected


def transition(phase: str, previous: str | None, minutes: int, dag_id: str, reason: str | None = None) -> dict:
    entry = {"phase": phase, "previous_phase": previous, "at": T0 + timedelta(minutes=minutes), "dag_id": dag_id,
             "run_id": f"manual__{dag_id}_{minutes}", "actor": "migrator"}
    if phase == "rolled_back":
        entry["reason"] = reason
    return entry


HISTORY = [
    transition("soak", "dual_write", 0, "reconcile"),
    transition("cut_over", "soak", 10, "cutover"),
    transition("rolled_back", "cut_over", 11, "cutover", "smoke checks failed: wallet_login"),
    transition("soak", "rolled_back", 30, "reconcile"),
    transition("cut_over", "soak", 40, "cutover"),
    transition("rolled_back", "cut_over", 50, "rollback", "rolled back by hand"),
]
DRIFT_RUNS = [
    {"run_id": "reconcile/scheduled__1", "direction": "source_to_target", "drifted": 7, "repaired": 7},
    {"run_id": "rollback/manual__rollback_50", "direction": "target_to_source", "drifted": 3, "repaired": 2},
]


def test_rollbacks_newest_first_with_reason_what_followed_and_the_reverse_reconciliation():
    rollbacks = list_rollbacks(HISTORY, DRIFT_RUNS)
    assert [(r["dag_id"], r["reason"], r["resumed_to"]) for r in rollbacks] == [
        ("rollback", "rolled back by hand", None),
        ("cutover", "smoke checks failed: wallet_login", "soak"),
    ]
    assert (rollbacks[0]["reverse_drifted"], rollbacks[0]["reverse_repaired"]) == (3, 2)
    # The cutover's own rollback ran no reverse reconciliation; a forward run is never taken for one.
    assert (rollbacks[1]["reverse_drifted"], rollbacks[1]["reverse_repaired"]) == (None, None)


def page(**overrides) -> str:
    data = {
        "migration": "credity",
        "generated_at": T0,
        "phase": {"current": "rolled_back", "since": T0, "by_dag": "rollback", "by_run": "manual__rollback_50",
                  "may_advance_to": ["dual_write", "soak"], "history": HISTORY},
        "backfill": [
            {"table": "wallet.users", "chunks_done": 4, "chunks_total": 4, "rows": 4000, "bytes": 2 << 20,
             "rows_per_s": 1234.5, "eta_s": 0.0, "last_copied_at": T0,
             "pacing": {"paused_s": 0, "cuts": 0, "slowest_mb_per_s": None, "highest_probe_ms": 0.41,
                        "budget_probe_ms": 0.52}},
            {"table": "wallet.activities", "chunks_done": 2, "chunks_total": 50, "rows": 2000, "bytes": 1 << 20,
             "rows_per_s": 10.0, "eta_s": 4800.0, "last_copied_at": T0,
             "pacing": {"paused_s": 12.5, "cuts": 7, "slowest_mb_per_s": 1.5, "highest_probe_ms": 1.93,
                        "budget_probe_ms": 0.52}},
            {"table": "wallet.claims", "chunks_done": 2, "chunks_total": 3, "rows": 20, "bytes": 1 << 10,
             "rows_per_s": 7000.0, "eta_s": 0.1, "last_copied_at": T0},
            {"table": "issuer.tenants", "chunks_done": 0, "chunks_total": None, "rows": 0, "bytes": 0,
             "rows_per_s": None, "eta_s": None, "last_copied_at": None},
        ],
        "backfill_plan": {"recorded_at": T0, "dag_id": "backfill", "run_id": "manual__backfill"},
        "verification": None,
        "drift_runs": [],
        "clean_streak": None,
        "rollbacks": list_rollbacks(HISTORY, DRIFT_RUNS),
    }
    return render_html({**data, **overrides})


def backfill_cells(html: str, table: str) -> list[str]:
    row = re.search(rf'<tr class="backfill" data-table="{re.escape(table)}"[^>]*>(.*?)</tr>', html).group(1)
    return re.findall(r"<td[^>]*>(.*?)</td>", row)


def test_backfill_rows_show_what_the_load_aware_pacer_did():
    html = page()
    assert "<th>pacing</th>" in html
    assert backfill_cells(html, "wallet.users")[8] == "never slowed; probe ≤ 0.41 of 0.52 ms"
    assert backfill_cells(html, "wallet.activities")[8] == (
        "7 cut(s), paused 12.5 s, slowest 1.5 MB/s; probe up to 1.93 ms (budget 0.52)")
    assert backfill_cells(html, "issuer.tenants")[8] == "off"
    unprobed = {"paused_s": 0, "cuts": 0, "slowest_mb_per_s": None, "highest_probe_ms": None, "budget_probe_ms": 0.52}
    assert "every chunk ended before its first probe" in page(backfill=[{
        "table": "wallet.claims", "chunks_done": 1, "chunks_total": 1, "rows": 3, "bytes": 100, "rows_per_s": 3.0,
        "eta_s": 0.0, "last_copied_at": T0, "pacing": unprobed}])


def test_backfill_rows_show_rate_and_time_left():
    html = page()
    assert "<th>rows/s</th><th>time left</th>" in html
    # table, progress, chunks, rows, MB, rows/s, time left, last chunk
    assert backfill_cells(html, "wallet.users")[5:7] == ["1,234", "done"]
    assert backfill_cells(html, "wallet.activities")[5:7] == ["10", "1 h 20 min"]
    assert backfill_cells(html, "issuer.tenants")[5:7] == ["–", "–"]
    # Nearly done is not done.
    assert backfill_cells(html, "wallet.claims")[6] == "under 1 s"
    assert 'data-table="wallet.activities" data-chunks-done="2" data-chunks-total="50" data-rows="2000" ' \
           'data-rows-per-s="10.0" data-eta-s="4800.0"' in html


def test_rollbacks_are_listed_and_their_absence_is_said():
    html = page()
    rows = re.findall(r'<tr class="rollback" data-run-id="([^"]+)">(.*?)</tr>', html)
    assert [r[0] for r in rows] == ["manual__rollback_50", "manual__cutover_11"]
    assert "rolled back by hand" in rows[0][1] and "still rolled back" in rows[0][1]
    assert "3 found, 2 repaired on the source" in rows[0][1]
    assert "smoke checks failed: wallet_login" in rows[1][1] and "<td>soak</td>" in rows[1][1]
    assert "<h2>Rollbacks (2)</h2>" in html
    assert "never gone back to the source" in page(rollbacks=[])


def test_a_reason_is_escaped():
    html = page(rollbacks=list_rollbacks([transition("rolled_back", "cut_over", 1, "cutover", "<script>x</script>")], []))
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
