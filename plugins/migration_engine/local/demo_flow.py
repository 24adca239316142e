"""The demo's phases, in the runbook's order, and the proof it ends with (``demo.py`` starts it)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from migration_engine.local.airflow_env import AirflowHome
from migration_engine.local.estate import Estate

REPO_ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO_ROOT / "artifacts" / "demo"
WRITER_RATE_PER_S = 25.0
DROPPED_TARGET_WRITES = 0.02
# A bound the simulator needs; the demo stops the apps itself once finalize is done.
APPS_MAX_S = 6 * 3600
# Our own loggers' lines in the `dags test` output: what a person wants to follow.
PROGRESS = re.compile(r"\[(?:info|warning|error)\s*\]\s+(.*?)\s+\[(migration\.[a-z_.]+)\]")


class DemoFailed(RuntimeError):
    pass


@dataclass
class Demo:
    scale: float
    seed: int
    soak_runs: int
    rollback: bool = False
    started: float = field(default_factory=time.monotonic)

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}s] {text}", flush=True)

    def run_dag(self, home: AirflowHome, env: dict, dag_id: str, conf: dict | None = None, expect_success: bool = True):
        self.say(f"▶ {dag_id} {conf or ''}")

        def show(line: str) -> None:
            match = PROGRESS.search(line)
            if match:
                print(f"           {match.group(1)[:160]}", flush=True)

        result = home.run_dag(dag_id, conf, extra_env=env, on_line=show)
        states = ", ".join(f"{task}={state}" for task, state in sorted(result.task_states.items()) if state != "success")
        if expect_success and not result.succeeded:
            tail = "\n".join(result.output.splitlines()[-40:])
            raise DemoFailed(f"{dag_id} did not succeed (exit {result.returncode}; {states})\n{tail}")
        mark = "✔" if result.succeeded else "✘"
        self.say(f"{mark} {dag_id}: {len(result.task_states)} task instances" + (f" ({states})" if states else ""))
        return result


def run(demo: Demo, estate: Estate, home: AirflowHome) -> str:
    from migration_engine import status_report, verify
    from migration_engine.generator import generate
    from migration_engine.schema_sql import create_source_layout
    from migration_engine.simulator import DualWriteSimulator, SimulatorConfig, TargetFaults

    m = estate.manifest
    sources = estate.source_endpoints()
    target = estate.target_endpoint()
    demo.say(f"creating the source layout and generating Credity data (scale {demo.scale:g}, seed {demo.seed})")
    create_source_layout(m, sources)
    generated = generate(m, sources, scale=demo.scale, seed=demo.seed)
    demo.say(f"generated {sum(generated.values()):,} rows in {len(generated)} tables")

    env = {**estate.airflow_env(), "MIGRATION_ARTIFACT_DIR": str(ARTIFACTS), "DB_POOL_MAX": "4"}
    config = SimulatorConfig(
        rate_per_s=WRITER_RATE_PER_S, duration_s=APPS_MAX_S, follow_read_path=True,
        faults=TargetFaults(drop=DROPPED_TARGET_WRITES), seed=demo.seed,
    )
    apps = DualWriteSimulator(m, sources, target, config).start()
    demo.say(f"apps writing at {WRITER_RATE_PER_S:g} writes/s, following the read-path flags as the apps do "
             f"(source only until dual-write opens; {DROPPED_TARGET_WRITES:.0%} of dual-writes lost)")
    try:
        demo.run_dag(home, env, "preflight")
        demo.run_dag(home, env, "schema_baseline")
        demo.run_dag(home, env, "backfill")
        demo.run_dag(home, env, "catch_up")
        demo.run_dag(home, env, "verify")
        demo.run_dag(home, env, "dual_write", {"confirm": "DUAL_WRITE", "dry_run": False})
        soak(demo, home, env)
        cut_over(demo, home, env)
        if demo.rollback:
            roll_back_and_return(demo, home, env)
        soak(demo, home, env)
        demo.run_dag(home, env, "finalize", {
            "confirm": "FINALIZE", "dry_run": False, "min_cutover_hours": 0, "min_clean_reconciles": demo.soak_runs,
        })
    finally:
        apps.stop()
        written = apps.join()
    if not written.total:
        raise DemoFailed("the apps wrote nothing: the writer simulator failed (see its log)")
    demo.say(f"apps stopped after {written.total:,} writes ({written.as_dict()['writes_per_s']}/s); "
             "a final reconciliation (target → source)")
    demo.run_dag(home, env, "reconcile")

    started = time.monotonic()
    result = verify.verify(sources, target, m)
    verify.write_report(result, ARTIFACTS / "final")
    with target.connect(autocommit=True) as conn:
        status_report.record_verification(conn, m, result, "demo", "final")
    html = status_report.write(target, m, ARTIFACTS / "final")
    if not result["ok"]:
        raise DemoFailed(f"final comparison failed: {result['failures']} (report {html})")
    drift = _drift_totals(estate)
    rows = sum(r["rows_source"] for r in result["tables"])
    writes = written.total
    return (
        f"PROOF: all {len(result['tables'])} tables equal in source and target ({rows:,} rows compared by count and "
        f"full-row checksum in {time.monotonic() - started:.1f}s); {writes:,} app writes, drift found {drift['found']:,} "
        f"and repaired {drift['repaired']:,} over {drift['runs']} reconcile runs; total {time.monotonic() - demo.started:.0f}s; "
        f"report {html}"
    )


def cut_over(demo: Demo, home: AirflowHome, env: dict) -> None:
    demo.run_dag(home, env, "cutover", {
        "confirm": "CUTOVER", "dry_run": False, "app_switch_seconds": 3, "min_soak_hours": 0, "min_clean_reconciles": demo.soak_runs,
    })
    demo.say("the apps now read from the target and write it first")


def roll_back_and_return(demo: Demo, home: AirflowHome, env: dict) -> None:
    """The runbook's rollback, timed from trigger to its end (target: 15 minutes), then the documented way
    back: hourly reconciles in `rolled_back` start a new soak, and a second cutover."""
    started = time.monotonic()
    demo.run_dag(home, env, "rollback", {"confirm": "ROLLBACK", "dry_run": False})
    demo.say(f"ROLLBACK: the apps are back on the source after {time.monotonic() - started:.0f}s from trigger to the "
             f"rollback's end (runbook target: 15 minutes); dual-write stays on")
    soak(demo, home, env)
    cut_over(demo, home, env)


def soak(demo: Demo, home: AirflowHome, env: dict) -> None:
    """Hourly reconciles, one after another, until ``demo.soak_runs`` in a row are clean (the gates' streak).
    A run that leaves rows unrepaired (a child whose parent the apps were still writing) fails and breaks the
    streak, as it would in production; the next run repairs them."""
    clean = 0
    for _ in range(demo.soak_runs * 3):
        result = demo.run_dag(home, env, "reconcile", expect_success=False)
        clean = clean + 1 if result.succeeded else 0
        if not result.succeeded:
            demo.say("that reconcile left rows unrepaired (see above); the next run repairs them")
        if clean == demo.soak_runs:
            return
    raise DemoFailed(f"no {demo.soak_runs} clean reconcile runs in a row out of {demo.soak_runs * 3}")


def _drift_totals(estate: Estate) -> dict:
    from migration_engine.reconcile import drift_ledger

    with estate.target_endpoint().connect(autocommit=True) as conn:
        return drift_ledger.totals(conn, estate.manifest.control_schema)
