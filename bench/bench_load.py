"""Benchmark: the apps' writes held at a sustained rate from backfill to finalize,
and what a backfill, unthrottled and throttled, costs their latency on the source.

The writer simulator (migration_engine.simulator) imitates the apps on one
pair of throwaway servers while every phase runs through Airflow (`dags test`):

1. three idle windows (apps write the source, nothing else runs): before the
   backfills, between them and after them. Their writes pooled give the p95
   baseline; the spread of their own p95s is the noise floor (a regression
   smaller than it cannot be told from noise on this machine);
2. the backfill unthrottled, into a copy of the baselined target database made
   for it (a probe, dropped after its window);
3. the backfill held to BENCH_LOAD_THROTTLE_MB_S into the real target; the
   migration goes on from it: the writes it missed are reconciled, verify runs;
4. dual-write soak, cutover while the apps keep writing, apps on the target
   first, reconcile target → source, a final reconcile, finalize.

Recorded per window: writes/s asked and held, p50/p95 of the apps' writes on
their primary (the source until cutover). For each backfill also the p95 of the
writes made while its chunks stream (each chunk's copy, from the chunk ledger),
what the throttle governs: on this machine Airflow's own processes (`dags test`,
its task runs) share the two cores with the source server, where a deployment
runs them on workers. Each p95 is set against the idle baseline and the
runbook's rollback trigger (over +30 %); the throttle's cost is the copy's extra
time. After cutover also the p95 once its reconcile was done: the apps on the
target with no migration work, the comparison the rollback trigger is about. A foreign key refused after a backfill (the apps inserted a parent after
its table was copied) is recorded, and the re-run the failure names is made, as
an operator would. Lost writes = tables that differ after the final reconcile (must be 0).

Knobs: BENCH_LOAD_RATE (writes/s, 40), BENCH_LOAD_SCALE (generator scale, 150:
about 1.8 M rows, 0.75 GB, so the unthrottled backfill lasts about a minute),
BENCH_LOAD_IDLE_S (each idle window, 60), BENCH_LOAD_THROTTLE_MB_S (2; docs/reliability.md
has the last run's figures). Writes bench/results/load.json and prints a table.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "dags")]

from migration_engine import ledger, verify  # noqa: E402
from migration_engine.chunk_ledger import ledger_ident  # noqa: E402
from migration_engine.endpoints import Endpoint, from_url  # noqa: E402
from migration_engine.env_contract import airflow_conn_variable  # noqa: E402
from migration_engine.generator import generate  # noqa: E402
from migration_engine.local.airflow_env import AirflowHome, DagRunResult, create_metadata_db, drop_metadata_db  # noqa: E402
from migration_engine.local.estate import TARGET_DB, TARGET_OWNER, Estate  # noqa: E402
from migration_engine.manifest import DEFAULT_MANIFEST, load_manifest  # noqa: E402
from migration_engine.reconcile.engine import Direction, reconcile_table  # noqa: E402
from migration_engine.schema_sql import create_source_layout  # noqa: E402
from migration_engine.sequences import sync_sequences  # noqa: E402
from migration_engine.simulator import DualWriteSimulator, SimulatorConfig, SimulatorReport, percentile  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "load.json"
METADATA_DB = "pgmig_airflow_bench_load"
HOME = ROOT / ".airflow" / "bench_load"
PROBE_DB = "postgres_target_probe"
P95_ROLLBACK_TRIGGER = 0.30
REPAIR_CAP = 1_000_000
MB = 1024 * 1024
# The post-load step's refusal names the re-run that fixes it (backfill_steps.post_load_constraints).
LATE_PARENTS = re.compile(r"What happened: failed: \w+: (foreign key .*? force on and tables \[([^\]]+)\].*?)(?:; Link:|$)")
RERUNS = 5
CHUNK_SPANS = "SELECT extract(epoch FROM copied_at) - seconds, extract(epoch FROM copied_at) FROM {}"
COPY_SPAN = """
SELECT extract(epoch FROM min(start_date)), extract(epoch FROM max(end_date)) FROM task_instance
WHERE dag_id = 'backfill' AND task_id = 'copy_chunk'
  AND run_id = (SELECT run_id FROM dag_run WHERE dag_id = 'backfill' ORDER BY id DESC LIMIT 1)
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def against(p95_ms: float, baseline_ms: float) -> float:
    return round(p95_ms / baseline_ms - 1, 3) if baseline_ms else 0.0


class LoadRun:
    def __init__(self, estate: Estate, home: AirflowHome, rate: float, work: Path):
        self.estate, self.home, self.rate = estate, home, rate
        self.m = estate.manifest
        self.sources = {s.name: estate.source_endpoint(s.name) for s in self.m.services}
        self.env = {**estate.airflow_env(), "MIGRATION_BACKUP_DIR": str(work / "backups"),
                    "MIGRATION_ARTIFACT_DIR": str(work / "artifacts"), "DB_POOL_MAX": "4"}
        self.windows: list[dict] = []
        self.idle: list[SimulatorReport] = []
        self.seed = 0

    def run(self, dag_id: str, conf: dict | None = None, env: dict | None = None) -> tuple[DagRunResult, float]:
        started = time.monotonic()
        result = self.home.run_dag(dag_id, conf, extra_env=env or self.env)
        seconds = time.monotonic() - started
        log(f"{dag_id}: {seconds:.1f}s, {'succeeded' if result.succeeded else 'FAILED'}")
        return result, seconds

    def dag(self, dag_id: str, conf: dict | None = None, env: dict | None = None) -> float:
        result, seconds = self.run(dag_id, conf, env)
        if not result.succeeded:
            fail(result)
        return seconds

    def writer(self, *, dual_write: bool, primary: str = "source") -> DualWriteSimulator:
        self.seed += 1
        config = SimulatorConfig(rate_per_s=self.rate, duration_s=None, max_writes=10**9, dual_write=dual_write,
                                 primary=primary, seed=self.seed)
        return DualWriteSimulator(self.m, self.sources, self.estate.target_endpoint(), config).start()

    def window(self, name: str, apps: DualWriteSimulator, during=None, seconds: float = 0.0) -> tuple[dict, SimulatorReport]:
        """Writes while ``during`` runs, and for at least ``seconds``; the figures of that window
        (and of its writes once ``during`` was done, when the window went on after it)."""
        started = time.monotonic()
        if during is not None:
            during()
        done = time.time()
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        apps.stop()
        report = apps.join()
        summary = report.as_dict()
        figures = {"window": name, "asked_per_s": self.rate, "held_per_s": summary["writes_per_s"],
                   "writes": summary["writes"], "primary_errors": summary["primary_errors"],
                   "p50_ms": summary["primary_p50_ms"], "p95_ms": summary["primary_p95_ms"], "seconds": summary["seconds"]}
        if during is not None and seconds:
            after = report.latencies_between(done, time.time())
            figures.update(after_writes=len(after), after_p95_ms=round(percentile(after, 0.95), 2))
        self.windows.append(figures)
        log(f"{name}: {figures}")
        return figures, report

    def idle_window(self, name: str, seconds: float) -> None:
        self.idle.append(self.window(name, self.writer(dual_write=False), seconds=seconds)[1])

    def backfill_window(self, name: str, target: Endpoint, env: dict, throttle_mb_per_s: float | None) -> dict:
        """The backfill DAG under the writer: the whole run, and the writes made while its chunks stream."""
        run = {}
        conf = {"max_copy_mb_per_s": throttle_mb_per_s} if throttle_mb_per_s else None
        figures, report = self.window(name, self.writer(dual_write=False),
                                      during=lambda: run.update(outcome=self.run("backfill", conf, env)))
        result, seconds = run["outcome"]
        with psycopg.connect(self.home.metadata_db.replace("postgresql+psycopg2://", "postgresql://", 1)) as conn:
            start, end = (float(t) for t in conn.execute(COPY_SPAN).fetchone())
        with target.connect(autocommit=True) as conn:
            ledger_table = sql.Identifier(*ledger_ident(self.m))
            copied = float(conn.execute(sql.SQL("SELECT sum(bytes) FROM {}").format(ledger_table)).fetchone()[0])
            spans = [(float(a), float(b)) for a, b in conn.execute(sql.SQL(CHUNK_SPANS).format(ledger_table))]
        streaming = [ms for a, b in spans for ms in report.latencies_between(a, b)]
        figures.update(throttle_mb_per_s=throttle_mb_per_s, dag_seconds=round(seconds, 1),
                       late_parents=late_parents(result),
                       copy_seconds=round(end - start, 1), copy_mb=round(copied / MB, 1),
                       copy_mb_per_s=round(copied / MB / (end - start), 1),
                       stream_seconds=round(sum(b - a for a, b in spans), 1), stream_writes=len(streaming),
                       stream_p95_ms=round(percentile(streaming, 0.95), 2))
        return figures

    def rerun_for_late_parents(self, refusal: dict | None) -> list[dict]:
        """The re-runs the refusals name, until the constraints apply (the apps are not writing now)."""
        reruns = []
        while refusal:
            if len(reruns) == RERUNS:
                raise SystemExit(f"post-load constraints still refused after {RERUNS} re-runs: {refusal['message']}")
            result, seconds = self.run("backfill", {"force": True, "tables": refusal["tables"]})
            reruns.append({"tables": refusal["tables"], "seconds": round(seconds, 1)})
            refusal = late_parents(result)
        return reruns

    def probe_target(self) -> tuple[Endpoint, dict]:
        """A copy of the baselined target database (ledger included) for the unthrottled backfill."""
        server = self.estate.target
        # A template must have no sessions; the pooler keeps idle ones to the target.
        server.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", params=(TARGET_DB,))
        server.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
            sql.Identifier(PROBE_DB), sql.Identifier(TARGET_DB), sql.Identifier(TARGET_OWNER)))
        url = server.url(PROBE_DB, TARGET_OWNER, self.estate.target_password)
        return from_url("probe target", url), {**self.env, airflow_conn_variable(self.m.target_direct.conn_id): url}

    def reconcile(self, direction: Direction, run_id: str) -> dict:
        totals = {"drifted": 0, "repaired": 0, "unrepaired": 0}
        for table in self.m.tables:
            result = reconcile_table(table, self.sources[table.service], self.estate.target_endpoint(), run_id=run_id,
                                     direction=direction, control_schema=self.m.control_schema, cap=REPAIR_CAP,
                                     grace_seconds=1)
            for key in totals:
                totals[key] += getattr(result, key)
        log(f"reconcile {run_id} ({direction.value}): {totals}")
        return totals

    def backfills(self, idle_s: float, throttle_mb_per_s: float) -> dict:
        """Idle, unthrottled (probe), idle, throttled (the real target), idle; each set against the idle baseline."""
        self.idle_window("idle 1 (before the backfills)", idle_s)
        self.dag("preflight")
        self.dag("schema_baseline")
        probe, probe_env = self.probe_target()
        unthrottled = self.backfill_window("backfill, unthrottled", probe, probe_env, None)
        self.estate.target.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(PROBE_DB)))
        self.idle_window("idle 2 (between them)", idle_s)
        throttled = self.backfill_window(f"backfill, held to {throttle_mb_per_s:g} MB/s", self.estate.target_endpoint(),
                                         self.env, throttle_mb_per_s)
        self.idle_window("idle 3 (after them)", idle_s)
        reruns = self.rerun_for_late_parents(throttled["late_parents"])
        idle_p95 = [r.percentile_ms(0.95) for r in self.idle]
        baseline = round(percentile([ms for r in self.idle for ms in r.latencies_ms], 0.95), 2)
        for figures in (unthrottled, throttled):
            figures.update(p95_regression=against(figures["p95_ms"], baseline),
                           stream_p95_regression=against(figures["stream_p95_ms"], baseline))
            figures["within_trigger"] = figures["p95_regression"] <= P95_ROLLBACK_TRIGGER
            figures["stream_within_trigger"] = figures["stream_p95_regression"] <= P95_ROLLBACK_TRIGGER
        return {
            "p95_idle_baseline_ms": baseline,
            "idle_p95_ms": [round(p, 2) for p in idle_p95],
            "idle_spread": round(max(idle_p95) / min(idle_p95) - 1, 3) if min(idle_p95) else 0.0,
            "rollback_trigger": P95_ROLLBACK_TRIGGER,
            "unthrottled": unthrottled, "throttled": throttled,
            "throttle_copy_time_cost": round(throttled["copy_seconds"] / unthrottled["copy_seconds"], 2),
            "late_parent_reruns": reruns,
        }

    def lifecycle(self, idle_s: float, throttle_mb_per_s: float) -> dict:
        backfills = self.backfills(idle_s, throttle_mb_per_s)
        caught_up = self.reconcile(Direction.SOURCE_TO_TARGET, "after-backfill")
        # Rows the apps inserted since the backfill's own sync moved the source sequences on.
        sync_sequences(self.sources, self.estate.target_endpoint(), self.m)
        self.dag("verify")
        self.dag("dual_write", {"confirm": "DUAL_WRITE", "dry_run": False})
        apps = self.writer(dual_write=True)
        soak = [self.reconcile(Direction.SOURCE_TO_TARGET, f"soak-{n}") for n in range(2)]
        with self.estate.target_endpoint().connect(autocommit=True) as conn:
            ledger.advance(conn, self.m.control_schema, "soak", "bench", "load")
        self.window("dual-write soak and cutover", apps, during=lambda: self.dag("cutover", {
            "confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 0, "min_clean_reconciles": 1,
            "repair_cap": REPAIR_CAP}))
        apps = self.writer(dual_write=True, primary="target")
        self.window("after cutover (target first)", apps,
                    during=lambda: self.reconcile(Direction.TARGET_TO_SOURCE, "after-cutover"), seconds=idle_s)
        final = self.reconcile(Direction.TARGET_TO_SOURCE, "final")
        self.dag("finalize", {"confirm": "FINALIZE", "dry_run": False, "min_cutover_hours": 0, "min_clean_reconciles": 1})
        compared = verify.verify(self.sources, self.estate.target_endpoint(), self.m)
        return {
            "rate_asked_per_s": self.rate,
            "windows": self.windows,
            "backfill": backfills,
            "repaired_after_backfill": caught_up["repaired"], "soak_reconciles": soak, "final_reconcile": final,
            "app_writes": sum(w["writes"] for w in self.windows),
            "tables_compared": len(compared["tables"]),
            "lost_writes_tables": compared["failed_tables"],
            "verified_equal": compared["ok"],
        }


def late_parents(result: DagRunResult) -> dict | None:
    """The refusal and the tables to copy again when the post-load step failed on late parents; None on success."""
    if result.succeeded:
        return None
    found = [m for m in map(LATE_PARENTS.search, result.output.splitlines()) if m]
    if result.state_of("apply_post_load_constraints") != "failed" or not found:
        fail(result)
    return {"message": found[-1].group(1), "tables": [t.strip() for t in found[-1].group(2).split(",")]}


def fail(result: DagRunResult) -> None:
    errors = [line for line in result.output.splitlines() if "[error" in line]
    raise SystemExit(f"{result.dag_id} failed: {result.task_states}\n" + "\n".join(errors[-10:]))


def print_table(result: dict) -> None:
    backfill = result["backfill"]
    baseline = backfill["p95_idle_baseline_ms"]
    print(f"\n{'window':<34}{'asked/s':>8}{'held/s':>8}{'writes':>8}{'p50 ms':>8}{'p95 ms':>8}{'vs idle':>9}")
    for w in result["windows"]:
        versus = f"{against(w['p95_ms'], baseline):+.0%}" if w["window"].startswith(("idle", "backfill")) else ""
        print(f"{w['window']:<34}{w['asked_per_s']:>8.1f}{w['held_per_s']:>8.1f}{w['writes']:>8}{w['p50_ms']:>8.2f}"
              f"{w['p95_ms']:>8.2f}{versus:>9}")
        if "after_p95_ms" in w:
            print(f"{'  once its reconcile was done':<34}{'':>8}{'':>8}{w['after_writes']:>8}{'':>8}{w['after_p95_ms']:>8.2f}"
                  f"{against(w['after_p95_ms'], baseline):>+9.0%}")
        if "stream_p95_ms" in w:
            print(f"{'  while its chunks stream':<34}{'':>8}{'':>8}{w['stream_writes']:>8}{'':>8}{w['stream_p95_ms']:>8.2f}"
                  f"{w['stream_p95_regression']:>+9.0%}")
    print(f"\nidle baseline p95 (the three idle windows pooled) {baseline:.2f} ms; idle windows' p95 "
          f"{', '.join(f'{p:.2f}' for p in backfill['idle_p95_ms'])} ms: spread {backfill['idle_spread']:+.0%} (noise floor)")
    for key in ("unthrottled", "throttled"):
        b = backfill[key]
        print(f"{b['window']}: DAG {b['dag_seconds']:.0f} s, chunk tasks {b['copy_seconds']:.0f} s for {b['copy_mb']:.0f} MB "
              f"({b['copy_mb_per_s']:.1f} MB/s); p95 {b['p95_regression']:+.0%} whole run, {b['stream_p95_regression']:+.0%} "
              f"while chunks stream (rollback trigger over +{backfill['rollback_trigger']:.0%}: "
              f"{'within' if b['within_trigger'] else 'OVER'} / {'within' if b['stream_within_trigger'] else 'OVER'})")
        if b["late_parents"]:
            print(f"  its post-load constraints were refused: {b['late_parents']['message']}")
    for rerun in backfill["late_parent_reruns"]:
        print(f"backfill re-run with force on {rerun['tables']}: {rerun['seconds']:.0f} s")
    print(f"throttle's cost: the chunk tasks take {backfill['throttle_copy_time_cost']:.2f}x as long")
    print(f"app writes {result['app_writes']:,}; after the final reconcile {result['tables_compared']} tables compared, "
          f"differing: {result['lost_writes_tables'] or 'none'}")
    conditions = result["conditions"]
    print(f"{conditions['cores']} cores; load average (1, 5, 15 min) before {conditions['load_before']}, "
          f"after {conditions['load_after']}")


def main() -> int:
    rate = float(os.environ.get("BENCH_LOAD_RATE", "40"))
    scale = float(os.environ.get("BENCH_LOAD_SCALE", "150"))
    idle_s = float(os.environ.get("BENCH_LOAD_IDLE_S", "60"))
    throttle = float(os.environ.get("BENCH_LOAD_THROTTLE_MB_S", "2"))
    manifest = load_manifest(os.environ.get("MIGRATION_MANIFEST") or DEFAULT_MANIFEST)
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.monotonic()
    try:
        with Estate(manifest) as estate:
            sources = {s.name: estate.source_endpoint(s.name) for s in manifest.services}
            create_source_layout(manifest, sources)
            rows = sum(generate(manifest, sources, scale=scale, seed=3).values())
            log(f"generated {rows:,} rows (scale {scale:g}); writer at {rate:g} writes/s; load average {load_before}")
            home = AirflowHome(HOME, create_metadata_db(METADATA_DB))
            home.migrate()
            lifecycle = LoadRun(estate, home, rate, HOME / "work").lifecycle(idle_s, throttle)
    finally:
        drop_metadata_db(METADATA_DB)
    conditions = {"cores": os.cpu_count(), "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
                  "bench_seconds": round(time.monotonic() - started)}
    result = {"scale": scale, "rows": rows, "conditions": conditions, **lifecycle}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwrote {RESULTS}")
    return 0 if result["verified_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
