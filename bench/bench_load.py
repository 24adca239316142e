"""Benchmark: the apps write from before preflight to after finalize, and every
phase moves on by a DAG run alone; what each phase costs their latency on the source.

One writer simulator (migration_engine.simulator) imitates the apps for the
whole run, following the read-path flags as the apps do (source only until
dual-write opens, both sides after, the target first after cutover), while
every phase runs through Airflow (`dags test`); nothing here calls the engine
or edits the ledger. Windows are cuts of that one stream of writes by time:

1. three idle windows (nothing else runs): before the backfills, between them
   and after them. Their writes pooled give the p95 baseline; the spread of their
   own p95s is the noise floor (a regression smaller than it cannot be told from
   noise on this machine);
2. the backfill unpaced (load-aware pacing off, no MB/s), into a copy of the
   baselined target database made for it (dropped after its window);
3. the backfill with its default settings (load-aware pacing at +30 %, no MB/s)
   into the real target; then the catch-up of the writes since its snapshots,
   and verify;
4. dual_write, the hourly reconcile until its first clean run starts the soak,
   cutover, the apps on the target first with reconcile target → source,
   finalize, and a final reconcile once the apps stop.

Recorded per window: writes/s asked and held, p50/p95 of the apps' writes on
their primary. For each backfill also the p95 of the writes made while its
chunks stream (each chunk's copy, from the chunk ledger), what the pacer
governs (on this machine Airflow's own processes share the two cores with the
source server, where a deployment runs them on workers), and how long each
source snapshot was held open. Each p95 is set against the idle baseline and the
runbook's rollback trigger (over +30 %). Lost writes = tables that differ after
the final reconcile (must be 0).

Machines as a deployment has them: the source server and the writer run on one core,
Airflow, the target, the pooler and Airflow's metadata DB on the other (``core_split``),
so the apps' latency measures what the migration's reads cost the source rather than
Airflow's own processes on the same two cores (BENCH_LOAD_SPLIT_CORES=0: no split).
Once the cutover flips the read path, the apps' primary is the target: at that moment
it takes the apps' core and the source joins Airflow on the other.

Knobs: BENCH_LOAD_RATE (writes/s, 40), BENCH_LOAD_SCALE (generator scale, 150:
about 1.8 M rows, 0.75 GB, so the unpaced backfill lasts about a minute),
BENCH_LOAD_IDLE_S (each idle window, 60); docs/reliability.md has the last run's
figures. The paced backfill also reports the pacer's decisions (cuts, pauses,
slowest rate, highest probe latency), summed from its chunk tasks' results. Writes bench/results/load.json and prints a table.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "dags"), str(ROOT / "bench")]

from core_split import CoreSplit, postmaster_pid  # noqa: E402

from migration_engine import verify  # noqa: E402
from migration_engine.chunk_ledger import ledger_ident  # noqa: E402
from migration_engine.endpoints import Endpoint, from_url  # noqa: E402
from migration_engine.env_contract import airflow_conn_variable  # noqa: E402
from migration_engine.generator import generate  # noqa: E402
from migration_engine.local.airflow_env import AirflowHome, DagRunResult, create_metadata_db, drop_metadata_db  # noqa: E402
from migration_engine.local.estate import TARGET_DB, TARGET_OWNER, Estate  # noqa: E402
from migration_engine.manifest import DEFAULT_MANIFEST, load_manifest  # noqa: E402
from migration_engine.schema_sql import create_source_layout  # noqa: E402
from migration_engine.simulator import DualWriteSimulator, SimulatorConfig, percentile  # noqa: E402
from migration_engine.snapshots import SNAPSHOTS_TABLE  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "load.json"
METADATA_DB = "pgmig_airflow_bench_load"
HOME = ROOT / ".airflow" / "bench_load"
PROBE_DB = "postgres_target_probe"
P95_ROLLBACK_TRIGGER = 0.30
REPAIR_CAP = 1_000_000
SOAK_RECONCILES = 3
FLIP_POLL_S = 0.1
MB = 1024 * 1024
CHUNK_SPANS = "SELECT extract(epoch FROM copied_at) - seconds, extract(epoch FROM copied_at) FROM {}"
SNAPSHOT_HOLDS = "SELECT service, extract(epoch FROM released_at - taken_at) FROM {} ORDER BY taken_at DESC LIMIT %s"
COPY_RESULTS = """
SELECT value FROM xcom WHERE dag_id = 'backfill' AND task_id = 'copy_chunk' AND key = 'return_value'
  AND run_id = (SELECT run_id FROM dag_run WHERE dag_id = 'backfill' ORDER BY id DESC LIMIT 1)
"""
COPY_SPAN = """
SELECT extract(epoch FROM min(start_date)), extract(epoch FROM max(end_date)) FROM task_instance
WHERE dag_id = 'backfill' AND task_id = 'copy_chunk'
  AND run_id = (SELECT run_id FROM dag_run WHERE dag_id = 'backfill' ORDER BY id DESC LIMIT 1)
"""


def pacing_totals(task_results: list) -> dict:
    """The load-aware pacer's decisions over every chunk of a run (task results as XCom stores them)."""
    reports = [c["pacing"] for r in task_results for c in (json.loads(r) if isinstance(r, str) else r)["chunks"]
               if c.get("pacing")]
    slowest = [r["slowest_mb_per_s"] for r in reports if r["slowest_mb_per_s"] is not None]
    return {"chunks_paced": len(reports), "cuts": sum(r["cuts"] for r in reports),
            "pauses": sum(r["pauses"] for r in reports), "paused_s": round(sum(r["paused_s"] for r in reports), 1),
            "slowest_mb_per_s": min(slowest) if slowest else None,
            "probes": sum(r["probes"] for r in reports),
            "highest_probe_ms": max((r["highest_probe_ms"] for r in reports if r["highest_probe_ms"] is not None),
                                    default=None),
            "budget_probe_ms": max((r["budget_probe_ms"] for r in reports), default=None)}


SCAN_RESTED = re.compile(r"pacer: rested ([\d.]+) s over (\d+) of (\d+) slices \(at most ([\d.]+)× a slice's time\); "
                         r"at most (\d+)% of the probes")


def scan_rests(outputs: list[str]) -> dict:
    """The scan pacer's rests in these DAG runs' logs, summed over the tables that rested."""
    rests = [m.groups() for output in outputs for m in SCAN_RESTED.finditer(output)]
    return {"tables": len(rests), "rested_s": round(sum(float(r[0]) for r in rests), 1),
            "rested_slices": sum(int(r[1]) for r in rests), "slices": sum(int(r[2]) for r in rests),
            "highest_rest_ratio": max((float(r[3]) for r in rests), default=None),
            "highest_share_over": max((int(r[4]) / 100 for r in rests), default=None)}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def against(p95_ms: float, baseline_ms: float) -> float:
    return round(p95_ms / baseline_ms - 1, 3) if baseline_ms else 0.0


class LoadRun:
    def __init__(self, estate: Estate, home: AirflowHome, apps: DualWriteSimulator, work: Path,
                 split: CoreSplit | None = None):
        self.estate, self.home, self.apps, self.split = estate, home, apps, split
        self.rate = apps.config.rate_per_s
        self.m = estate.manifest
        self.sources = estate.source_endpoints()
        self.env = {**estate.airflow_env(), "MIGRATION_BACKUP_DIR": str(work / "backups"),
                    "MIGRATION_ARTIFACT_DIR": str(work / "artifacts"), "DB_POOL_MAX": "4"}
        self.windows: list[dict] = []
        self.outputs: list[str] = []
        self.idle: list[list[float]] = []
        self.failed_reconciles: list[str] = []

    def run(self, dag_id: str, conf: dict | None = None, env: dict | None = None) -> tuple[DagRunResult, float]:
        started = time.monotonic()
        result = self.home.run_dag(dag_id, conf, extra_env=env or self.env)
        seconds = time.monotonic() - started
        self.outputs.append(result.output)
        log(f"{dag_id}: {seconds:.1f}s, {'succeeded' if result.succeeded else 'FAILED'}")
        return result, seconds

    def dag(self, dag_id: str, conf: dict | None = None, env: dict | None = None) -> float:
        result, seconds = self.run(dag_id, conf, env)
        if not result.succeeded:
            fail(result)
        return seconds

    def window(self, name: str, during=None, seconds: float = 0.0) -> tuple[dict, list[float]]:
        """The apps' writes while ``during`` runs, and for at least ``seconds``; the window's figures."""
        started_at, started = time.time(), time.monotonic()
        runs_before = len(self.outputs)
        if during is not None:
            during()
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        ended_at = time.time()
        latencies = self.apps.report.latencies_between(started_at, ended_at)
        figures = {"name": name, "asked_per_s": self.rate, "held_per_s": round(len(latencies) / (ended_at - started_at), 1),
                   "writes": len(latencies), "p50_ms": round(percentile(latencies, 0.5), 2),
                   "p95_ms": round(percentile(latencies, 0.95), 2), "seconds": round(ended_at - started_at, 1)}
        rests = scan_rests(self.outputs[runs_before:])
        if rests["tables"]:
            figures["scan_pacing"] = rests
        self.windows.append(figures)
        log(f"{name}: {figures}")
        return figures, latencies

    def idle_window(self, name: str, seconds: float) -> None:
        self.idle.append(self.window(name, seconds=seconds)[1])

    def backfill_window(self, name: str, target: Endpoint, env: dict, conf: dict | None) -> dict:
        """The backfill DAG under the apps' writes: the whole run, the writes made while its chunks stream,
        how long it held each source snapshot and what its pacer decided."""
        figures, _ = self.window(name, during=lambda: self.dag("backfill", conf, env))
        with psycopg.connect(self.home.metadata_db.replace("postgresql+psycopg2://", "postgresql://", 1)) as conn:
            start, end = (float(t) for t in conn.execute(COPY_SPAN).fetchone())
            pacing = pacing_totals([row[0] for row in conn.execute(COPY_RESULTS).fetchall()])
        with target.connect(autocommit=True) as conn:
            ledger_table = sql.Identifier(*ledger_ident(self.m))
            copied = float(conn.execute(sql.SQL("SELECT sum(bytes) FROM {}").format(ledger_table)).fetchone()[0])
            spans = [(float(a), float(b)) for a, b in conn.execute(sql.SQL(CHUNK_SPANS).format(ledger_table))]
            holds = conn.execute(sql.SQL(SNAPSHOT_HOLDS).format(sql.Identifier(self.m.control_schema, SNAPSHOTS_TABLE)),
                                 (len(self.m.services),)).fetchall()
        streaming = [ms for a, b in spans for ms in self.apps.report.latencies_between(a, b)]
        figures.update(conf=conf, pacing=pacing, dag_seconds=figures["seconds"],
                       copy_seconds=round(end - start, 1), copy_mb=round(copied / MB, 1),
                       copy_mb_per_s=round(copied / MB / (end - start), 1),
                       stream_seconds=round(sum(b - a for a, b in spans), 1), stream_writes=len(streaming),
                       stream_p95_ms=round(percentile(streaming, 0.95), 2),
                       snapshot_held_s={service: round(float(held or 0), 1) for service, held in holds})
        return figures

    def probe_target(self) -> tuple[Endpoint, dict]:
        """A copy of the baselined target database (ledger included) for the unpaced backfill."""
        server = self.estate.target
        # A template must have no sessions; the pooler keeps idle ones to the target.
        server.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", params=(TARGET_DB,))
        server.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
            sql.Identifier(PROBE_DB), sql.Identifier(TARGET_DB), sql.Identifier(TARGET_OWNER)))
        url = server.url(PROBE_DB, TARGET_OWNER, self.estate.target_password)
        return from_url("probe target", url), {**self.env, airflow_conn_variable(self.m.target_direct.conn_id): url}

    def backfills(self, idle_s: float) -> dict:
        """Idle, unpaced (probe target), idle, paced by default (the real target), idle; each set against the
        idle baseline."""
        self.idle_window("idle 1 (before the backfills)", idle_s)
        self.dag("preflight")
        self.dag("schema_baseline")
        probe, probe_env = self.probe_target()
        unpaced = self.backfill_window("backfill, unpaced", probe, probe_env, {"max_latency_increase": None})
        self.estate.target.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(PROBE_DB)))
        self.idle_window("idle 2 (between them)", idle_s)
        paced = self.backfill_window("backfill, default pacing", self.estate.target_endpoint(), self.env, None)
        self.idle_window("idle 3 (after them)", idle_s)
        idle_p95 = [percentile(window, 0.95) for window in self.idle]
        baseline = round(percentile([ms for window in self.idle for ms in window], 0.95), 2)
        for figures in (unpaced, paced):
            figures.update(p95_regression=against(figures["p95_ms"], baseline),
                           stream_p95_regression=against(figures["stream_p95_ms"], baseline))
            figures["within_trigger"] = figures["p95_regression"] <= P95_ROLLBACK_TRIGGER
            figures["stream_within_trigger"] = figures["stream_p95_regression"] <= P95_ROLLBACK_TRIGGER
        return {
            "p95_idle_baseline_ms": baseline,
            "idle_p95_ms": [round(p, 2) for p in idle_p95],
            "idle_spread": round(max(idle_p95) / min(idle_p95) - 1, 3) if min(idle_p95) else 0.0,
            "rollback_trigger": P95_ROLLBACK_TRIGGER,
            "unpaced": unpaced, "paced": paced,
            "copy_time_vs_unpaced": round(paced["copy_seconds"] / unpaced["copy_seconds"], 2),
        }

    def phase(self) -> str:
        with self.estate.target_endpoint().connect(autocommit=True) as conn:
            return conn.execute(sql.SQL("SELECT current_phase FROM {}").format(
                sql.Identifier(self.m.control_schema, "status"))).fetchone()[0]

    def soak(self) -> int:
        """Hourly reconciles, triggered one after another, until the first clean one starts the soak. A run
        that fails (rows left unrepaired, e.g. a child whose parent was still being written) is followed by
        the next one, as the hourly schedule would; the failures are recorded."""
        for attempt in range(1, SOAK_RECONCILES + 1):
            result, _ = self.run("reconcile", {"repair_cap": REPAIR_CAP})
            if not result.succeeded:
                self.failed_reconciles.append(result.task_states.get("judge_run", "failed"))
            elif self.phase() == "soak":
                return attempt
        raise SystemExit(f"no clean reconcile in {SOAK_RECONCILES} runs: the soak did not start")

    def cutover(self) -> None:
        """The cutover DAG. The target takes the apps' core the moment the apps take it for their primary,
        not when the run ends: from the flip on, their latency is the target's, and a deployment's target
        has cores of its own rather than sharing Airflow's."""
        flipped = threading.Event()
        done = threading.Event()

        def move_at_the_flip() -> None:
            while not done.wait(FLIP_POLL_S):
                if all(primary == "target" for primary, _ in self.apps.flags.values()):
                    self.split.move_primary(postmaster_pid(self.estate.target.datadir))
                    flipped.set()
                    log("the apps read the target first: it takes their core")
                    return

        watcher = threading.Thread(target=move_at_the_flip, name="flip watcher", daemon=True)
        if self.split:
            watcher.start()
        try:
            self.dag("cutover", {"confirm": "CUTOVER", "dry_run": False, "app_switch_seconds": 3, "min_soak_hours": 0,
                                 "min_clean_reconciles": 1, "repair_cap": REPAIR_CAP})
        finally:
            done.set()
        if self.split:
            watcher.join()
            if not flipped.is_set():
                self.split.move_primary(postmaster_pid(self.estate.target.datadir))

    def lifecycle(self, idle_s: float) -> dict:
        backfills = self.backfills(idle_s)
        self.window("catch-up and verify", during=lambda: (self.dag("catch_up"), self.dag("verify")))
        self.dag("dual_write", {"confirm": "DUAL_WRITE", "dry_run": False})
        soak_runs = {}
        self.window("dual-write soak (reconcile until clean)", during=lambda: soak_runs.update(runs=self.soak()))
        self.window("cutover", during=self.cutover)
        self.window("after cutover (target first), reconcile", during=lambda: self.dag("reconcile", {"repair_cap": REPAIR_CAP}))
        self.window("after cutover (target first), quiet", seconds=idle_s)
        self.window("finalize", during=lambda: self.dag("finalize", {
            "confirm": "FINALIZE", "dry_run": False, "min_cutover_hours": 0, "min_clean_reconciles": 1}))
        self.apps.stop()
        written = self.apps.join()
        self.dag("reconcile", {"repair_cap": REPAIR_CAP})
        compared = verify.verify(self.sources, self.estate.target_endpoint(), self.m)
        baseline = backfills["p95_idle_baseline_ms"]
        for window in self.windows:
            window["p95_regression"] = against(window["p95_ms"], baseline)
            window["within_budget"] = (window["p95_regression"] <= P95_ROLLBACK_TRIGGER
                                       or window["p95_regression"] <= backfills["idle_spread"])
        return {
            "p95_budget": P95_ROLLBACK_TRIGGER,
            "noise_floor": backfills["idle_spread"],
            "copy_time_vs_unpaced": backfills["copy_time_vs_unpaced"],
            "rate_asked_per_s": self.rate,
            "windows": self.windows,
            "backfill": backfills,
            "soak_reconciles": soak_runs["runs"],
            "failed_soak_reconciles": len(self.failed_reconciles),
            "app_writes": written.total,
            "app_writes_refused": written.primary_errors,
            "tables_compared": len(compared["tables"]),
            "lost_writes_tables": compared["failed_tables"],
            "lost_writes": len(compared["failed_tables"]),
            "verified_equal": compared["ok"],
        }


def fail(result: DagRunResult) -> None:
    errors = [line for line in result.output.splitlines() if "[error" in line or "[warning" in line]
    raise SystemExit(f"{result.dag_id} failed: {result.task_states}\n" + "\n".join(errors[-30:]))


def print_table(result: dict) -> None:
    backfill = result["backfill"]
    baseline = backfill["p95_idle_baseline_ms"]
    print(f"\n{'window':<34}{'asked/s':>8}{'held/s':>8}{'writes':>8}{'p50 ms':>8}{'p95 ms':>8}{'vs idle':>9}")
    for w in result["windows"]:
        versus = f"{against(w['p95_ms'], baseline):+.0%}"
        print(f"{w['name']:<34}{w['asked_per_s']:>8.1f}{w['held_per_s']:>8.1f}{w['writes']:>8}{w['p50_ms']:>8.2f}"
              f"{w['p95_ms']:>8.2f}{versus:>9}")
        if "scan_pacing" in w:
            r = w["scan_pacing"]
            print(f"  scans rested {r['rested_s']:.0f} s ({r['rested_slices']} of {r['slices']} slices, {r['tables']} tables, "
                  f"up to {r['highest_rest_ratio']:g}x a slice; at most {r['highest_share_over']:.0%} of probes over)")
        if "stream_p95_ms" in w:
            print(f"{'  while its chunks stream':<34}{'':>8}{'':>8}{w['stream_writes']:>8}{'':>8}{w['stream_p95_ms']:>8.2f}"
                  f"{w['stream_p95_regression']:>+9.0%}")
    print(f"\nidle baseline p95 (the three idle windows pooled) {baseline:.2f} ms; idle windows' p95 "
          f"{', '.join(f'{p:.2f}' for p in backfill['idle_p95_ms'])} ms: spread {backfill['idle_spread']:+.0%} (noise floor)")
    for key in ("unpaced", "paced"):
        b = backfill[key]
        print(f"{b['name']}: DAG {b['dag_seconds']:.0f} s, chunk tasks {b['copy_seconds']:.0f} s for {b['copy_mb']:.0f} MB "
              f"({b['copy_mb_per_s']:.1f} MB/s); p95 {b['p95_regression']:+.0%} whole run, {b['stream_p95_regression']:+.0%} "
              f"while chunks stream (rollback trigger over +{backfill['rollback_trigger']:.0%}: "
              f"{'within' if b['within_trigger'] else 'OVER'} / {'within' if b['stream_within_trigger'] else 'OVER'})")
        print(f"  source snapshots held open: {', '.join(f'{svc} {held:.0f} s' for svc, held in b['snapshot_held_s'].items())}")
    print(f"pacing's cost: the chunk tasks take {backfill['copy_time_vs_unpaced']:.2f}x as long; the pacer: "
          f"{backfill['paced']['pacing']}")
    print(f"reconcile runs until the soak started: {result['soak_reconciles']}")
    print(f"app writes {result['app_writes']:,} (refused by the primary: {result['app_writes_refused']}); lost writes "
          f"{result['lost_writes']}: after the final reconcile {result['tables_compared']} tables compared, "
          f"differing: {result['lost_writes_tables'] or 'none'}")
    conditions = result["conditions"]
    split = conditions["core_split"]
    cores = (f"source and apps on {split['source_and_apps']}, the rest on {split['airflow_target_pooler_metadata']}"
             + (f"; after cutover {split['after_cutover']}" if split["after_cutover"] else "") if split else "not split")
    print(f"{conditions['cores']} cores ({cores}); load average (1, 5, 15 min) before {conditions['load_before']}, "
          f"after {conditions['load_after']}")


def main() -> int:
    rate = float(os.environ.get("BENCH_LOAD_RATE", "40"))
    scale = float(os.environ.get("BENCH_LOAD_SCALE", "150"))
    idle_s = float(os.environ.get("BENCH_LOAD_IDLE_S", "60"))
    manifest = load_manifest(os.environ.get("MIGRATION_MANIFEST") or DEFAULT_MANIFEST)
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.monotonic()
    try:
        with Estate(manifest) as estate:
            sources = estate.source_endpoints()
            create_source_layout(manifest, sources)
            rows = sum(generate(manifest, sources, scale=scale, seed=3).values())
            # The generator's aftermath (autovacuum of fresh tables, dirty pages) must not land in an idle window.
            for source in sources.values():
                with source.connect(autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE")
            estate.source.execute("CHECKPOINT")
            log(f"generated {rows:,} rows (scale {scale:g}); writer at {rate:g} writes/s; load average {load_before}")
            home = AirflowHome(HOME, create_metadata_db(METADATA_DB))
            home.migrate()
            split = CoreSplit(estate.source.datadir, [postmaster_pid(estate.target.datadir), estate.pooler.process.pid])
            split_cores = split.possible and os.environ.get("BENCH_LOAD_SPLIT_CORES", "1") != "0"
            if split_cores:
                split.pin_servers()
                split.on_source_core()
            config = SimulatorConfig(rate_per_s=rate, duration_s=None, max_writes=10**9, follow_read_path=True, seed=1)
            apps = DualWriteSimulator(manifest, sources, estate.target_endpoint(), config).start()
            if split_cores:
                split.on_other_cores()
            try:
                lifecycle = LoadRun(estate, home, apps, HOME / "work", split if split_cores else None).lifecycle(idle_s)
            finally:
                apps.stop()
                apps.join()
                split.restore()
                home.close()
    finally:
        drop_metadata_db(METADATA_DB)
    conditions = {"cores": os.cpu_count(), "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
                  "bench_seconds": round(time.monotonic() - started),
                  "core_split": split.describe() if split_cores else None}
    result = {"scale": scale, "rows": rows, "conditions": conditions, **lifecycle}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwrote {RESULTS}")
    return 0 if result["verified_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
