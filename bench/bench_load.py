"""Benchmark: the apps' writes held at a sustained rate from backfill to finalize.

The writer simulator (migration_engine.simulator) imitates the apps on one
pair of throwaway servers while every phase runs through Airflow (`dags test`):

1. idle: apps write the source only, nothing else runs (the p95 baseline);
2. backfill: the same writer while the backfill DAG copies (p95 under load);
   then the writes the backfill missed are reconciled and verify runs quiet;
3. dual-write soak: writes go to the source, then to the target; reconcile passes;
4. cutover while the apps keep writing; then apps write the target first,
   reconcile target → source; apps stop; a final reconcile; finalize.

Recorded per window: writes/s asked and held, p50/p95 of the apps' writes on
their primary (the source until cutover); the p95 regression during backfill against the runbook's rollback
trigger (over 30 %); lost writes = tables that differ after the final
reconcile (must be 0). Knobs: BENCH_LOAD_RATE (writes/s, 40), BENCH_LOAD_SCALE
(generator scale, 1), BENCH_LOAD_IDLE_S (30). Writes bench/results/load.json
and prints a table.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "dags")]

from migration_engine import ledger, verify  # noqa: E402
from migration_engine.generator import generate  # noqa: E402
from migration_engine.local.airflow_env import AirflowHome, create_metadata_db  # noqa: E402
from migration_engine.local.estate import Estate  # noqa: E402
from migration_engine.manifest import DEFAULT_MANIFEST, load_manifest  # noqa: E402
from migration_engine.reconcile.engine import Direction, reconcile_table  # noqa: E402
from migration_engine.schema_sql import create_source_layout  # noqa: E402
from migration_engine.sequences import sync_sequences  # noqa: E402
from migration_engine.simulator import DualWriteSimulator, SimulatorConfig  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "load.json"
METADATA_DB = "pgmig_airflow_bench_load"
HOME = ROOT / ".airflow" / "bench_load"
P95_ROLLBACK_TRIGGER = 0.30
REPAIR_CAP = 1_000_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class LoadRun:
    def __init__(self, estate: Estate, home: AirflowHome, rate: float, work: Path):
        self.estate, self.home, self.rate = estate, home, rate
        self.m = estate.manifest
        self.sources = {s.name: estate.source_endpoint(s.name) for s in self.m.services}
        self.env = {**estate.airflow_env(), "MIGRATION_BACKUP_DIR": str(work / "backups"),
                    "MIGRATION_ARTIFACT_DIR": str(work / "artifacts"), "DB_POOL_MAX": "4"}
        self.windows: list[dict] = []
        self.seed = 0

    def dag(self, dag_id: str, conf: dict | None = None) -> float:
        started = time.monotonic()
        result = self.home.run_dag(dag_id, conf, extra_env=self.env)
        if not result.succeeded:
            errors = [line for line in result.output.splitlines() if "[error" in line]
            raise SystemExit(f"{dag_id} failed: {result.task_states}\n" + "\n".join(errors[-10:]))
        seconds = time.monotonic() - started
        log(f"{dag_id}: {seconds:.1f}s")
        return seconds

    def writer(self, *, dual_write: bool, primary: str = "source") -> DualWriteSimulator:
        self.seed += 1
        config = SimulatorConfig(rate_per_s=self.rate, duration_s=None, max_writes=10**9, dual_write=dual_write,
                                 primary=primary, seed=self.seed)
        return DualWriteSimulator(self.m, self.sources, self.estate.target_endpoint(), config).start()

    def window(self, name: str, apps: DualWriteSimulator, during=None, seconds: float = 0.0) -> dict:
        """Writes while ``during`` runs, and for at least ``seconds``; the figures of that window."""
        started = time.monotonic()
        if during is not None:
            during()
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
        apps.stop()
        report = apps.join().as_dict()
        figures = {"window": name, "asked_per_s": self.rate, "held_per_s": report["writes_per_s"],
                   "writes": report["writes"], "primary_errors": report["primary_errors"],
                   "p50_ms": report["primary_p50_ms"], "p95_ms": report["primary_p95_ms"], "seconds": report["seconds"]}
        self.windows.append(figures)
        log(f"{name}: {figures}")
        return figures

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

    def lifecycle(self, idle_s: float) -> dict:
        self.window("idle (no migration work)", self.writer(dual_write=False), seconds=idle_s)
        self.dag("preflight")
        self.dag("schema_baseline")
        backfill = {}
        self.window("backfill running", self.writer(dual_write=False),
                    during=lambda: backfill.update(seconds=self.dag("backfill")))
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
        idle, loaded = self.windows[0]["p95_ms"], self.windows[1]["p95_ms"]
        regression = (loaded / idle - 1) if idle else 0.0
        return {
            "rate_asked_per_s": self.rate,
            "windows": self.windows,
            "backfill_seconds": round(backfill["seconds"], 1),
            "p95_idle_ms": idle, "p95_during_backfill_ms": loaded,
            "p95_regression": round(regression, 3), "rollback_trigger": P95_ROLLBACK_TRIGGER,
            "within_trigger": regression <= P95_ROLLBACK_TRIGGER,
            "repaired_after_backfill": caught_up["repaired"], "soak_reconciles": soak, "final_reconcile": final,
            "app_writes": sum(w["writes"] for w in self.windows),
            "tables_compared": len(compared["tables"]),
            "lost_writes_tables": compared["failed_tables"],
            "verified_equal": compared["ok"],
        }


def print_table(result: dict) -> None:
    print(f"\n{'window':<32}{'asked/s':>9}{'held/s':>9}{'writes':>9}{'p50 ms':>9}{'p95 ms':>9}")
    for w in result["windows"]:
        print(f"{w['window']:<32}{w['asked_per_s']:>9.1f}{w['held_per_s']:>9.1f}{w['writes']:>9}{w['p50_ms']:>9.2f}{w['p95_ms']:>9.2f}")
    print(f"\np95 during backfill vs idle: {result['p95_regression']:+.1%} (rollback trigger: over "
          f"+{result['rollback_trigger']:.0%}) -> {'within' if result['within_trigger'] else 'OVER'}")
    print(f"app writes {result['app_writes']:,}; after the final reconcile {result['tables_compared']} tables compared, "
          f"differing: {result['lost_writes_tables'] or 'none'}")


def main() -> int:
    rate = float(os.environ.get("BENCH_LOAD_RATE", "40"))
    scale = float(os.environ.get("BENCH_LOAD_SCALE", "1"))
    idle_s = float(os.environ.get("BENCH_LOAD_IDLE_S", "30"))
    manifest = load_manifest(os.environ.get("MIGRATION_MANIFEST") or DEFAULT_MANIFEST)
    with Estate(manifest) as estate:
        sources = {s.name: estate.source_endpoint(s.name) for s in manifest.services}
        create_source_layout(manifest, sources)
        rows = sum(generate(manifest, sources, scale=scale, seed=3).values())
        log(f"generated {rows:,} rows (scale {scale:g}); writer at {rate:g} writes/s")
        home = AirflowHome(HOME, create_metadata_db(METADATA_DB))
        home.migrate()
        result = {"scale": scale, "rows": rows, **LoadRun(estate, home, rate, HOME / "work").lifecycle(idle_s)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nwrote {RESULTS}")
    return 0 if result["verified_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
