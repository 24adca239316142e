"""The migration status report: one HTML page on-call staff look at, not read.

It shows, from the target's control schema only (ledgers, never table data):
the current phase and its history (phase ledger), per-table backfill progress
with its rate and time left (chunk ledger), the latest verification per table
(a ledger fact), a chart of drift per reconciliation run over the soak (drift
ledger), and every rollback with its reason and reverse reconciliation. The
page is self-contained: inline CSS and an inline SVG chart, nothing fetched at
view time.

``read`` only reads, inside one read-only snapshot, so a report is consistent
even while DAGs write. The Airflow UI serves it live (``status_view``, the
"Migration status" entry of the UI's navigation); the DAGs also write it to a
file with ``dag_support.write_status_report``; by hand::

    AIRFLOW_CONN_...=postgresql://... python -m migration_engine.status_report [--directory DIR]

What it cannot learn from a ledger it takes from two facts the DAGs record:
``backfill_plan`` (chunks planned per table, for "done of total") and
``verification`` (counts and match flags per table, no checksums or values).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import psycopg

from migration_engine import catalog, chunk_ledger, ledger, sqlfiles
from migration_engine.drift_chart import render_drift_chart
from migration_engine.endpoints import Endpoint, EndpointError, from_url, redact
from migration_engine.manifest import DEFAULT_MANIFEST, Manifest, load_manifest
from migration_engine.reconcile import drift_ledger
from migration_engine.reconcile.engine import Direction, direction_for_phase

REPORT_FILE = "migration-status.html"
PLAN_FACT = "backfill_plan"
VERIFICATION_FACT = "verification"
# Hourly runs over a three-day soak, with room to spare; older runs stay in the ledger.
CHART_RUNS = 96
MAIN_LINE = ("not_started", "preflight_passed", "schema_applied", "backfilled", "verified", "dual_write", "soak",
             "cut_over", "finalized")


class StatusReportError(RuntimeError):
    pass


# Recording the two facts (called by the DAG tasks that know them).

def record_backfill_plan(conn: psycopg.Connection, manifest: Manifest, chunk_tables: Iterable[str], dag_id: str, run_id: str) -> dict:
    """Store the chunks planned per table (one entry per planned chunk in ``chunk_tables``).

    A backfill of some tables replaces their counts and keeps the others'."""
    earlier = ledger.read_fact(conn, manifest.control_schema, PLAN_FACT)
    planned = dict(sorted({**(earlier.value if earlier else {}), **Counter(chunk_tables)}.items()))
    ledger.record_fact(conn, manifest.control_schema, PLAN_FACT, planned, dag_id, run_id)
    return planned


def verification_summary(result: Mapping) -> dict:
    """What the report needs of ``verify.verify``'s result: counts and flags, no digests."""
    keep = ("table", "rows_source", "rows_target", "rows_match", "checksum_match", "ok", "error")
    return {
        "ok": bool(result["ok"]),
        "tables": [{k: r.get(k) for k in keep} for r in result["tables"]],
        "state_store_keys": len(result.get("state_store", [])),
        "state_store_failed": sum(not r["ok"] for r in result.get("state_store", [])),
        "sequences": len(result.get("sequences", [])),
        "sequences_failed": sum(not r["ok"] for r in result.get("sequences", [])),
        "failures": len(result.get("failures", [])),
    }


def record_verification(conn: psycopg.Connection, manifest: Manifest, result: Mapping, dag_id: str, run_id: str) -> dict:
    summary = verification_summary(result)
    ledger.record_fact(conn, manifest.control_schema, VERIFICATION_FACT, summary, dag_id, run_id)
    return summary


# Reading.

def _rows(conn: psycopg.Connection, name: str, params: dict | None = None, **identifiers) -> list[dict]:
    cur = sqlfiles.run(conn, f"status_report/{name}", params, **identifiers)
    names = [d.name for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _rollback_reason(details: Mapping | None) -> str:
    """Why the read path went back: the cutover's own reason, else the manual rollback DAG's."""
    details = details or {}
    if details.get("reason"):
        failed = details.get("failed") or []
        return f"{details['reason']}: {', '.join(map(str, failed))}" if failed else str(details["reason"])
    return "rolled back by hand"


def _phase(conn: psycopg.Connection, control: str) -> dict:
    if not ledger.ledger_exists(conn, control):
        return {"current": ledger.NOT_STARTED, "since": None, "by_dag": None, "by_run": None, "may_advance_to": [],
                "history": []}
    row = ledger.status(conn, control)
    # Claims of the fence (a phase to itself) are not moves: the page shows the moves.
    moves = [t for t in row["history"] if t["phase"] != t["previous_phase"]]
    # Details stay out (they hold paths and summaries, not what a glance needs), except a rollback's reason.
    history = [{k: t.get(k) for k in ("phase", "previous_phase", "at", "dag_id", "run_id", "actor")} for t in moves]
    for entry, transition in zip(history, moves, strict=True):
        entry["at"] = datetime.fromisoformat(entry["at"]) if entry["at"] else None
        if entry["phase"] == "rolled_back":
            entry["reason"] = _rollback_reason(transition.get("details"))
    return {"current": row["current_phase"], "since": row["since"], "by_dag": row["by_dag"], "by_run": row["by_run"],
            "may_advance_to": list(row["may_advance_to"]), "history": history}


def _backfill(conn: psycopg.Connection, manifest: Manifest, planned: Mapping[str, int] | None) -> list[dict]:
    done = chunk_ledger.read_progress(conn, manifest) if catalog.table_exists(conn, chunk_ledger.ledger_ident(manifest)) else {}
    names = [t.qualified for t in manifest.tables] + sorted(set(done) - {t.qualified for t in manifest.tables})
    progress = []
    for name in names:
        row = done.get(name, {})
        chunks_done, rows = int(row.get("chunks_done") or 0), int(row.get("rows") or 0)
        total = planned.get(name) if planned is not None else None
        rate, eta = chunk_ledger.estimate(chunks_done, total or 0, rows, row.get("wall_seconds") or 0)
        progress.append({
            "table": name,
            "chunks_done": chunks_done,
            "chunks_total": total,
            "rows": rows,
            "bytes": int(row.get("bytes") or 0),
            "rows_per_s": rate,
            # Without a plan there is no total to count down to.
            "eta_s": eta if total else None,
            "last_copied_at": row.get("last_copied_at"),
            "pacing": _pacing(row),
        })
    return progress


def _pacing(row: Mapping) -> dict | None:
    """The load-aware pacer's decisions over a table's chunks; None when none was paced."""
    if row.get("budget_probe_ms") is None:
        return None
    return {"paused_s": round(row.get("paused_s") or 0, 1), "cuts": int(row.get("pacing_cuts") or 0),
            "slowest_mb_per_s": row.get("slowest_mb_per_s"), "highest_probe_ms": row.get("highest_probe_ms"),
            "budget_probe_ms": row.get("budget_probe_ms")}


def _pacing_text(pacing: Mapping | None) -> str:
    if pacing is None:
        return "off"
    if pacing["highest_probe_ms"] is None:
        return "on; every chunk ended before its first probe"
    if not pacing["cuts"] and not pacing["paused_s"]:
        return f"never slowed; probe ≤ {pacing['highest_probe_ms']:.2f} of {pacing['budget_probe_ms']:.2f} ms"
    return (f"{pacing['cuts']} cut(s), paused {pacing['paused_s']:g} s, slowest {pacing['slowest_mb_per_s'] or 0:g} MB/s; "
            f"probe up to {pacing['highest_probe_ms']:.2f} ms (budget {pacing['budget_probe_ms']:.2f})")


def _fact(conn: psycopg.Connection, control: str, key: str) -> dict | None:
    fact = ledger.read_fact(conn, control, key)
    if fact is None:
        return None
    return {"value": fact.value, "recorded_at": fact.recorded_at, "dag_id": fact.dag_id, "run_id": fact.run_id}


def _drift(conn: psycopg.Connection, manifest: Manifest, phase: str | None) -> tuple[list[dict], dict | None]:
    control = manifest.control_schema
    if not catalog.table_exists(conn, (control, drift_ledger.RUNS_TABLE)):
        return [], None
    runs = _rows(conn, "select_drift_per_run", {"runs": CHART_RUNS}, runs=(control, drift_ledger.RUNS_TABLE))
    if not catalog.table_exists(conn, (control, drift_ledger.OUTCOMES_TABLE)):
        return runs, None
    # The streak the next gate reads: cutover's (source to target) until the cutover, finalize's after it.
    direction = direction_for_phase(phase or "") or (
        Direction.TARGET_TO_SOURCE if phase == "finalized" else Direction.SOURCE_TO_TARGET)
    streak = drift_ledger.clean_streak(conn, control, direction.value, [t.qualified for t in manifest.tables])
    return runs, {"consecutive_clean_runs": streak.consecutive_clean_runs, "clean_since": streak.clean_since,
                  "last_run_at": streak.last_run_at, "last_unclean_at": streak.last_unclean_at,
                  "direction": direction.value}


def list_rollbacks(history: list[Mapping], drift_runs: list[Mapping]) -> list[dict]:
    """Each move to rolled_back, newest first: why, what the migration went on to, and
    the reverse reconciliation its run recorded (what the target had that the source lacked)."""
    reverse = {r["run_id"]: r for r in drift_runs if "target_to_source" in (r["direction"] or "")}
    rollbacks = []
    for n, entry in enumerate(history):
        if entry["phase"] != "rolled_back":
            continue
        after = history[n + 1]["phase"] if n + 1 < len(history) else None
        found = reverse.get(f"{entry['dag_id']}/{entry['run_id']}")
        rollbacks.append({**{k: entry[k] for k in ("at", "dag_id", "run_id", "reason")}, "resumed_to": after,
                          "reverse_drifted": found and found["drifted"], "reverse_repaired": found and found["repaired"]})
    return rollbacks[::-1]


def collect(target_conn: psycopg.Connection, manifest: Manifest) -> dict:
    """Everything the report shows, read from the control schema (reads only; missing ledgers read as empty)."""
    control = manifest.control_schema
    plan = _fact(target_conn, control, PLAN_FACT)
    verification = _fact(target_conn, control, VERIFICATION_FACT)
    phase = _phase(target_conn, control)
    drift_runs, streak = _drift(target_conn, manifest, phase["current"])
    return {
        "migration": manifest.migration,
        "generated_at": datetime.now(UTC),
        "phase": phase,
        "backfill": _backfill(target_conn, manifest, plan["value"] if plan else None),
        "backfill_plan": plan and {k: plan[k] for k in ("recorded_at", "dag_id", "run_id")},
        "verification": verification and {**verification["value"], **{k: verification[k] for k in ("recorded_at", "dag_id", "run_id")}},
        "drift_runs": drift_runs,
        "clean_streak": streak,
        "rollbacks": list_rollbacks(phase["history"], drift_runs),
    }


def read(target_endpoint: Endpoint, manifest: Manifest) -> dict:
    """``collect`` inside one read-only snapshot of the target; a failure names the endpoint, never its password."""
    try:
        with target_endpoint.connect() as conn:
            conn.read_only = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():
                return collect(conn, manifest)
    except psycopg.Error as exc:
        raise StatusReportError(f"status report: reading the ledgers on {target_endpoint.name} failed: "
                                f"{redact(str(exc), target_endpoint.password)}") from None


# Rendering.

CSS = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
h1{margin:0 0 4px}h2{margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#666;font-size:13px}
.phases{display:flex;flex-wrap:wrap;gap:4px;margin:12px 0}
.phase{padding:6px 10px;border-radius:4px;background:#eee;color:#777;font-size:13px}
.phase.passed{background:#d8eedf;color:#245}.phase.current{background:#245;color:#fff;font-weight:bold;font-size:15px}
.phase.rolled_back{background:#d23f3f;color:#fff;font-weight:bold}
.big{font-size:22px;font-weight:bold}
.cards{display:flex;gap:16px;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:180px}
.card .label{color:#666;font-size:12px;text-transform:uppercase}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fde3e3;font-weight:bold}tr.ok td.flag{color:#2e7d4f}
.progress{background:#eee;width:160px;height:12px;border-radius:3px;overflow:hidden;display:inline-block;vertical-align:middle}
.progress span{display:block;height:100%;background:#2e9d5b}
.PASSED{color:#2e7d4f}.FAILED{color:#c62828}.empty{color:#777;font-style:italic}
"""


def _text(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _duration(seconds: float | None) -> str:
    """Time left as a person reads it: done, seconds, minutes, or hours and minutes."""
    if seconds is None:
        return "–"
    if seconds == 0:
        return "done"
    if seconds < 1:
        return "under 1 s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _cell(value, css: str = "") -> str:
    cls = f' class="{css}"' if css else (' class="num"' if isinstance(value, int | float) and not isinstance(value, bool) else "")
    return f"<td{cls}>{escape(_text(value))}</td>"


def _phase_section(phase: Mapping, streak: Mapping | None) -> str:
    current = phase["current"]
    reached = {h["phase"] for h in phase["history"]}
    boxes = []
    for name in MAIN_LINE:
        css = "current" if name == current else "passed" if name in reached or name == "not_started" else ""
        boxes.append(f'<div class="phase {css}" data-phase="{name}">{escape(name.replace("_", " "))}</div>')
    if current == "rolled_back":
        boxes.append('<div class="phase rolled_back current" data-phase="rolled_back">rolled back</div>')
    cards = [
        ("current phase", current.replace("_", " ")),
        ("since", _text(phase["since"])),
        ("moved there by", f"{phase['by_dag'] or '–'} ({phase['by_run'] or '–'})"),
        ("may move to", ", ".join(phase["may_advance_to"]) or "–"),
    ]
    if streak:
        cards.append((f"clean reconcile runs in a row ({streak['direction']})", _text(streak["consecutive_clean_runs"])))
    card_html = "".join(f'<div class="card"><div class="label">{escape(k)}</div><div class="big">{escape(v)}</div></div>'
                        for k, v in cards)
    history = "".join("<tr>" + "".join(_cell(h[k]) for k in ("at", "previous_phase", "phase", "dag_id", "run_id", "actor"))
                      + "</tr>" for h in reversed(phase["history"]))
    table = (f'<table class="history"><tr><th>at</th><th>from</th><th>to</th><th>DAG</th><th>run</th><th>role</th></tr>{history}</table>'
             if history else '<p class="empty">No phase recorded yet: run preflight first.</p>')
    return (f'<h2>Phase</h2><div class="phases" id="current-phase" data-current="{escape(current)}">{"".join(boxes)}</div>'
            f'<div class="cards">{card_html}</div><h3>History (newest first)</h3>{table}')


def _backfill_section(rows: list[Mapping], plan: Mapping | None) -> str:
    body = []
    for r in rows:
        total = r["chunks_total"]
        share = min(1.0, r["chunks_done"] / total) if total else 0.0
        chunks = f"{r['chunks_done']} / {total}" if total is not None else (
            f"{r['chunks_done']} / ?" if plan is None else f"{r['chunks_done']}, not in the plan")
        body.append(f'<tr class="backfill" data-table="{escape(r["table"])}" data-chunks-done="{r["chunks_done"]}" '
                    f'data-chunks-total="{"" if total is None else total}" data-rows="{r["rows"]}" '
                    f'data-rows-per-s="{"" if r["rows_per_s"] is None else r["rows_per_s"]}" '
                    f'data-eta-s="{"" if r["eta_s"] is None else r["eta_s"]}">'
                    f'<td>{escape(r["table"])}</td><td><span class="progress"><span style="width:{share * 100:.0f}%"></span></span></td>'
                    f'<td class="num">{escape(chunks)}</td>{_cell(r["rows"])}{_cell(round(r["bytes"] / 1048576, 1))}'
                    f'{_cell(None if r["rows_per_s"] is None else round(r["rows_per_s"]))}'
                    f'<td class="num">{escape(_duration(r["eta_s"]))}</td>{_cell(r["last_copied_at"])}'
                    f'<td class="pacing">{escape(_pacing_text(r.get("pacing")))}</td></tr>')
    note = (f'<p class="meta">Chunks planned by {escape(plan["dag_id"])} run {escape(plan["run_id"])} at {escape(_text(plan["recorded_at"]))}.</p>'
            if plan else '<p class="meta">No backfill plan recorded yet: totals show as ?.</p>')
    return ('<h2>Backfill</h2>' + note + '<table class="backfill"><tr><th>table</th><th>progress</th><th>chunks</th><th>rows</th>'
            '<th>MB</th><th>rows/s</th><th>time left</th><th>last chunk</th><th>pacing</th></tr>' + "".join(body) + "</table>"
            '<p class="meta">rows/s: rows copied over the wall time from the first chunk to the last; '
            'time left: the chunks not yet copied, at that rate and the average chunk so far; '
            'pacing: how the load-aware pacer held the copy back to keep the source\'s probe latency '
            'within its budget (the task logs have each decision).</p>')


def _verification_section(v: Mapping | None) -> str:
    if not v:
        return '<h2>Verification</h2><p class="empty">No verification recorded yet.</p>'
    status = "PASSED" if v["ok"] else "FAILED"
    rows = []
    for t in v["tables"]:
        checksum = "match" if t["checksum_match"] else (t.get("error") or "DIFFERS")
        rows.append(f'<tr class="verify {"ok" if t["ok"] else "fail"}" data-table="{escape(t["table"])}" '
                    f'data-checksum-match="{str(bool(t["checksum_match"])).lower()}">'
                    + _cell(t["table"]) + _cell(t["rows_source"]) + _cell(t["rows_target"])
                    + _cell(checksum, "flag") + "</tr>")
    failed = sum(not t["ok"] for t in v["tables"])
    return (f'<h2>Verification <span class="{status}">{status}</span></h2>'
            f'<p class="meta">{len(v["tables"])} tables, {failed} failed; state-store keys {v["state_store_keys"]} '
            f'({v["state_store_failed"]} failed); sequences {v["sequences"]} ({v["sequences_failed"]} behind). '
            f'Run {escape(v["run_id"])} of {escape(v["dag_id"])} at {escape(_text(v["recorded_at"]))}.</p>'
            '<table class="verification"><tr><th>table</th><th>rows source</th><th>rows target</th><th>checksum</th></tr>'
            + "".join(rows) + "</table>")


def _drift_section(runs: list[Mapping], streak: Mapping | None) -> str:
    if not runs:
        return '<h2>Drift per reconciliation run</h2><p class="empty">No reconciliation run recorded yet.</p>'
    last = runs[-1]
    summary = (f'{len(runs)} run(s) shown (latest {CHART_RUNS} at most); the latest, {escape(last["run_id"])}, '
               f'found {last["drifted"]} drifted, repaired {last["repaired"]}, {last["in_flight"]} in flight, '
               f'{last["unrepaired"]} unrepaired over {last["tables_checked"]} tables.')
    if streak:
        summary += f' Clean runs in a row: {streak["consecutive_clean_runs"]}.'
    return f'<h2>Drift per reconciliation run</h2><p class="meta">{summary}</p>{render_drift_chart(runs)}'


def _rollbacks_section(rollbacks: list[Mapping]) -> str:
    if not rollbacks:
        return '<h2>Rollbacks</h2><p class="empty">No rollback: the read path has never gone back to the source.</p>'
    rows = []
    for r in rollbacks:
        reverse = ("–" if r["reverse_drifted"] is None
                   else f'{r["reverse_drifted"]:,} found, {r["reverse_repaired"]:,} repaired on the source')
        rows.append(f'<tr class="rollback" data-run-id="{escape(r["run_id"] or "")}">'
                    + "".join(_cell(r[k]) for k in ("at", "dag_id", "run_id", "reason"))
                    + _cell(r["resumed_to"] or "still rolled back") + _cell(reverse) + "</tr>")
    return (f'<h2>Rollbacks ({len(rollbacks)})</h2><table class="rollbacks"><tr><th>at</th><th>DAG</th><th>run</th>'
            '<th>reason</th><th>then</th><th>reverse reconciliation</th></tr>' + "".join(rows) + "</table>")


def render_html(data: Mapping) -> str:
    """The whole page; every value escaped, nothing loaded from elsewhere."""
    title = f"{data['migration']} migration: {data['phase']['current'].replace('_', ' ')}"
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<style>{CSS}</style></head><body><h1>{escape(title)}</h1>'
            f'<p class="meta">Generated {escape(_text(data["generated_at"]))} from the control schema of the target.</p>'
            + _phase_section(data["phase"], data["clean_streak"])
            + _rollbacks_section(data["rollbacks"])
            + _drift_section(data["drift_runs"], data["clean_streak"])
            + _backfill_section(data["backfill"], data["backfill_plan"])
            + _verification_section(data["verification"])
            + "</body></html>\n")


def write(target_endpoint: Endpoint, manifest: Manifest, directory: Path | str) -> Path:
    """Read the ledgers in one read-only snapshot and (re)write ``migration-status.html`` in ``directory``."""
    data = read(target_endpoint, manifest)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / REPORT_FILE
    # Written aside then renamed: someone looking never sees half a page.
    partial = directory / f".{REPORT_FILE}.partial"
    partial.write_text(render_html(data))
    partial.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    from migration_engine.env_contract import airflow_conn_variable
    from migration_engine.resources import artifact_folder

    parser = argparse.ArgumentParser(prog="python -m migration_engine.status_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--directory", type=Path, default=None,
                        help="where to write migration-status.html (default: the artifact folder status/latest)")
    parser.add_argument("--manifest", type=Path, default=Path(os.environ.get("MIGRATION_MANIFEST") or DEFAULT_MANIFEST))
    args = parser.parse_args(argv)
    manifest = load_manifest(args.manifest)
    variable = airflow_conn_variable(manifest.target_direct.conn_id)
    url = os.environ.get(variable)
    if not url:
        print(f"status report: environment variable {variable} (the target, direct URL) is not set", file=sys.stderr)
        return 1
    try:
        path = write(from_url("target (direct)", url), manifest, args.directory or artifact_folder("status", "latest"))
    except (StatusReportError, EndpointError) as exc:
        print(redact(str(exc)), file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
