"""Benchmark: the initial backfill, our engine and DAG against pg_dump|pg_restore, pgcopydb and a raw COPY pipe.

One run, one pair of throwaway servers, one generated Credity dataset (default
just over 5 M rows; ``BENCH_SCALE`` sets the generator's scale), in turn:

- engine: ``plan_all`` + ``copy_chunk`` in a process pool of ``BENCH_ENGINE_WORKERS`` (2);
- dag: the backfill DAG under a real ``airflow scheduler`` (LocalExecutor,
  parallelism ``BENCH_PARALLELISM`` = 3), ``dag-processor`` and the execution
  API server, on a fresh metadata DB on 127.0.0.1:5432; the whole run, from its
  trigger recorded to its end (it also applies the post-load constraints and
  syncs sequences; the trigger CLI's own start-up is reported apart), with
  load-aware pacing off like every peer (bench_load.py measures what pacing costs);
- pg_dump -Fc | pg_restore --data-only, one pipe per source database;
- pgcopydb copy table-data (--table-jobs 2), per source database;
- a raw COPY (FORMAT binary) psql | psql pipe per table, as many at once as the engine's
  workers (biggest tables first): the same streams without planning, chunks or ledger.

The engine and the DAG load the target's service schemas; the peers load a
copy of each source database (schema public) on the target server, because
they keep schema names. Every load lands in tables with primary keys and
without the post-load constraints, and the target is truncated between runs.
An untimed COPY pipe pass goes first, so no timed run pays for the target's first WAL
segments. Then the peak RSS of one chunk copy (a chunk and one 10x larger) as
bench/chunk_rss.py measures it. Prints a table, writes bench/results/backfill.json.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "dags"), str(ROOT / "bench")]

from chunk_rss import measure  # noqa: E402

from migration_engine import ledger, preflight  # noqa: E402
from migration_engine.chunk_ledger import ensure_chunk_ledger, ledger_ident  # noqa: E402
from migration_engine.chunks import plan_all, table_size  # noqa: E402
from migration_engine.copier import copy_chunk  # noqa: E402
from migration_engine.generator import generate, planned_rows  # noqa: E402
from migration_engine.local.cluster import AirflowCluster  # noqa: E402
from migration_engine.local.estate import TARGET_OWNER, Estate  # noqa: E402
from migration_engine.local.servers import SUPERUSER  # noqa: E402
from migration_engine.manifest import load_manifest  # noqa: E402
from migration_engine.schema_sql import apply_schema, create_source_layout  # noqa: E402
from migration_engine.segment import TableSegment  # noqa: E402

MIN_ROWS = 5_000_000
RESULTS = ROOT / "bench" / "results" / "backfill.json"
METADATA_DB = "pgmig_airflow_bench_backfill"
SERVER_SETTINGS = {"max_wal_size": "8GB", "checkpoint_timeout": "30min", "shared_buffers": "512MB"}


def default_scale(manifest) -> float:
    """The smallest round scale whose dataset holds at least MIN_ROWS rows."""
    per_scale = sum(planned_rows(manifest, 1).values())
    scale = math.ceil(MIN_ROWS / per_scale / 10) * 10
    while sum(planned_rows(manifest, scale).values()) < MIN_ROWS:
        scale += 10
    return scale


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Bench:
    def __init__(self, estate: Estate, manifest, workdir: Path):
        self.estate, self.manifest, self.workdir = estate, manifest, workdir
        self.sources = estate.source_endpoints()
        self.target = estate.target_endpoint()
        # Peers take libpq URIs; passwords go to a private passfile, never a command line.
        self.passfile = workdir / "pgpass"
        self.passfile.touch(mode=0o600)
        self.passfile.write_text(
            f"127.0.0.1:{estate.source.port}:*:{SUPERUSER}:{estate.source.password}\n"
            f"127.0.0.1:{estate.target.port}:*:{TARGET_OWNER}:{estate.target_password}\n"
        )
        self.child_env = {**{k: v for k, v in os.environ.items() if not k.startswith("PG")}, "PGPASSFILE": str(self.passfile)}

    def source_uri(self, service: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.estate.source.port}/{service}"

    def copy_uri(self, service: str) -> str:
        return f"postgresql://{TARGET_OWNER}@127.0.0.1:{self.estate.target.port}/{copy_db(service)}"

    # --- set-up (not timed) ---------------------------------------------------------------

    def prepare(self, scale: float) -> dict:
        for server in (self.estate.source, self.estate.target):
            server.configure(**SERVER_SETTINGS)
            server.restart()
        create_source_layout(self.manifest, self.sources)
        started = time.monotonic()
        rows = generate(self.manifest, self.sources, scale=scale, seed=1)
        generated_s = time.monotonic() - started
        for service in self.manifest.services:
            with self.sources[service.name].connect(autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
        self._target_at_schema_applied()
        for service in self.manifest.services:
            self.estate.target.create_database(copy_db(service.name), owner=TARGET_OWNER)
            with psycopg.connect(self.copy_uri(service.name), autocommit=True, passfile=str(self.passfile)) as conn:
                apply_schema(conn, self.manifest, "source", [service.name], post_load=False)
        return {"rows": sum(rows.values()), "generate_s": round(generated_s, 1), "per_table": rows}

    def _target_at_schema_applied(self) -> None:
        """The ledger and schema as preflight and schema_baseline leave them (backups skipped)."""
        with self.target.connect() as conn:
            ledger.ensure_ledger(conn, self.manifest.control_schema)
            for service in self.manifest.services:
                with self.sources[service.name].connect() as source:
                    preflight.freeze_fingerprint(source, conn, self.manifest, service.name, "bench", "setup")
            ledger.advance(conn, self.manifest.control_schema, "preflight_passed", "bench", "setup")
        with self.target.connect(autocommit=True) as conn:
            apply_schema(conn, self.manifest, post_load=False)
        with self.target.connect() as conn:
            ledger.advance(conn, self.manifest.control_schema, "schema_applied", "bench", "setup")
            ensure_chunk_ledger(conn, self.manifest)

    def truncate(self) -> None:
        with self.target.connect(autocommit=True) as conn:
            names = [sql.Identifier(*t.target_ident) for t in self.manifest.tables]
            conn.execute(sql.SQL("TRUNCATE {}, {}").format(sql.SQL(", ").join(names), sql.Identifier(*ledger_ident(self.manifest))))
        for service in self.manifest.services:
            tables = [sql.Identifier(*t.source_ident) for t in self.manifest.tables if t.service == service.name]
            with psycopg.connect(self.copy_uri(service.name), autocommit=True, passfile=str(self.passfile)) as conn:
                conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(tables)))
        # Each run starts without the previous run's dirty pages to write.
        self.estate.target.execute("CHECKPOINT")

    def landed_rows(self, into: str) -> int:
        total = 0
        if into == "target":
            with self.target.connect(autocommit=True) as conn:
                for table in self.manifest.tables:
                    total += conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table.target_ident))).fetchone()[0]
            return total
        for table in self.manifest.tables:
            with psycopg.connect(self.copy_uri(table.service), autocommit=True, passfile=str(self.passfile)) as conn:
                total += conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table.source_ident))).fetchone()[0]
        return total

    # --- the runs -------------------------------------------------------------------------

    def run_engine(self, workers: int) -> float:
        started = time.monotonic()
        chunks = plan_all(self.manifest, self.sources)
        jobs = [(self.sources[self.manifest.table(c.table).service], self.target, str(self.manifest.file), c.to_dict()) for c in chunks]
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_copy_one, jobs))
        elapsed = time.monotonic() - started
        log(f"engine: {len(chunks)} chunks, {sum(r['rows'] for r in results)} rows, modes {sorted({r['mode'] for r in results})}")
        return elapsed

    def run_pg_dump_restore(self) -> float:
        started = time.monotonic()
        for service in self.manifest.services:
            dump = subprocess.Popen(["pg_dump", "-Fc", "--data-only", "-d", self.source_uri(service.name)],
                                    stdout=subprocess.PIPE, env=self.child_env)
            restore = subprocess.run(["pg_restore", "--data-only", "--no-owner", "-d", self.copy_uri(service.name)],
                                     stdin=dump.stdout, env=self.child_env, capture_output=True, text=True)
            dump.stdout.close()
            if dump.wait() != 0 or restore.returncode != 0:
                raise RuntimeError(f"pg_dump|pg_restore of {service.name} failed: {restore.stderr[-2000:]}")
        return time.monotonic() - started

    def run_pgcopydb(self, jobs: int) -> float:
        started = time.monotonic()
        for service in self.manifest.services:
            folder = self.workdir / f"pgcopydb-{service.name}"
            proc = subprocess.run(
                ["pgcopydb", "copy", "table-data", "--source", self.source_uri(service.name),
                 "--target", self.copy_uri(service.name), "--dir", str(folder), "--table-jobs", str(jobs), "--restart"],
                env=self.child_env, capture_output=True, text=True,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"pgcopydb of {service.name} failed: {proc.stderr[-3000:]}")
        return time.monotonic() - started

    def run_copy_pipe(self, streams: int) -> float:
        """The honest floor for the engine: the same number of streams, each copying whole tables
        (biggest first) through a binary COPY pipe, nothing planned, chunked or recorded."""
        tables = sorted(self.manifest.tables, key=self._source_bytes, reverse=True)
        started = time.monotonic()
        with ThreadPoolExecutor(streams) as pool:
            list(pool.map(self._pipe_table, tables))
        return time.monotonic() - started

    def _source_bytes(self, table) -> int:
        with self.sources[table.service].connect(autocommit=True) as conn:
            return table_size(conn, table)[1]

    def _pipe_table(self, table) -> None:
        name = sql.Identifier(*table.source_ident).as_string()
        out = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.source_uri(table.service),
                                "-c", f"COPY {name} TO STDOUT (FORMAT binary)"], stdout=subprocess.PIPE, env=self.child_env)
        into = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.copy_uri(table.service),
                               "-c", f"COPY {name} FROM STDIN (FORMAT binary)"],
                              stdin=out.stdout, env=self.child_env, capture_output=True, text=True)
        out.stdout.close()
        if out.wait() != 0 or into.returncode != 0:
            raise RuntimeError(f"COPY pipe of {table.qualified} failed: {into.stderr[-2000:]}")

    def chunk_rss(self) -> dict:
        """Peak RSS of one chunk copy and of one 10x larger, on the biggest integer-keyed table."""
        table = self.manifest.table("wallet.activities")
        with self.sources[table.service].connect(autocommit=True) as conn:
            low, high = conn.execute(sql.SQL("SELECT min(id), max(id) FROM {}").format(
                sql.Identifier(*table.source_ident))).fetchone()
        step = (high - low + 1) // 11
        small = measure(self.sources[table.service], self.target, self.manifest, TableSegment(table.qualified, "id", "integer", low, low + step))
        large = measure(self.sources[table.service], self.target, self.manifest,
                        TableSegment(table.qualified, "id", "integer", low + step, low + 11 * step))
        keep = ("rows", "bytes", "seconds", "mb_per_s", "baseline_mb", "peak_mb")
        return {"small": {k: small[k] for k in keep}, "large": {k: large[k] for k in keep}}


def copy_db(service: str) -> str:
    return f"{service}_copy"


def _copy_one(job) -> dict:
    source, target, manifest_file, chunk = job
    return copy_chunk(source, target, load_manifest(manifest_file), chunk, run_id="bench-engine")


def local_airflow(workdir: Path, extra_env: dict, parallelism: int) -> AirflowCluster:
    """A real Airflow: scheduler (LocalExecutor), dag-processor and the execution API, on a fresh metadata DB."""
    return AirflowCluster(home=workdir / "airflow", dags_folder=ROOT / "dags", executor="LocalExecutor", workers=0, extra_env={
        **extra_env,
        "DB_POOL_MAX": str(parallelism),
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        # Deployment tuning for short tasks on 2 cores: a quicker idle loop, and DAG files
        # parsed once rather than every 30 s while the copy competes for the CPU.
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "MIGRATION_ARTIFACT_DIR": str(workdir / "artifacts"),
    })


def run_backfill_dag(cluster: AirflowCluster) -> dict:
    """Trigger the backfill DAG and wait for it.

    ``run_s`` is the run's own time, from the moment its trigger is recorded to its end, as the UI
    shows it; ``wall_s`` adds what the harness costs around it (the trigger CLI's start-up, the
    polling for the end). Per task: instances and busy time; ``no_task_running_s``: seconds of the
    run in which no task ran (scheduling and start-up between serial steps)."""
    # Only the backfill is measured: the catch-up its Asset schedules waits.
    cluster.pause("catch_up")
    started = time.monotonic()
    # Load-aware pacing off, as every peer runs: this compares copying machinery. What pacing
    # costs with the apps writing is bench_load.py's measure (copy_time_vs_unpaced).
    run_id = cluster.trigger("backfill", conf='{"max_latency_increase": 0}')
    state = cluster.wait_for_run("backfill", run_id, timeout=7200)
    wall = time.monotonic() - started
    if state != "success":
        raise RuntimeError(f"the backfill DAG run ended {state}; see {cluster.home}")
    with psycopg.connect(cluster.airflow.metadata_db.replace("postgresql+psycopg2://", "postgresql://", 1)) as conn:
        run_s = conn.execute("SELECT extract(epoch FROM end_date - queued_at) FROM dag_run WHERE dag_id = 'backfill' "
                             "AND run_id = %s", (run_id,)).fetchone()[0]
        tasks = conn.execute(
            "SELECT task_id, count(*), round(extract(epoch FROM max(end_date) - min(start_date))::numeric, 1), "
            "round(sum(extract(epoch FROM end_date - start_date))::numeric, 1) FROM task_instance "
            "WHERE dag_id = 'backfill' AND run_id = %s GROUP BY task_id ORDER BY min(start_date)", (run_id,)).fetchall()
        # The union of the task instances' intervals: time in which at least one task ran.
        busy = conn.execute(
            "SELECT coalesce(sum(extract(epoch FROM upper(r) - lower(r))), 0) FROM unnest((SELECT range_agg(tstzrange("
            "start_date, end_date)) FROM task_instance WHERE dag_id = 'backfill' AND run_id = %s AND start_date IS NOT NULL AND end_date IS NOT NULL)) r",
            (run_id,)).fetchone()[0]
    return {"run_s": float(run_s), "wall_s": round(wall, 1), "no_task_running_s": round(float(run_s - busy), 1),
            "tasks": {t: {"instances": n, "window_s": float(w), "busy_s": float(b)} for t, n, w, b in tasks}}


def main() -> dict:
    manifest = load_manifest()
    scale = float(os.environ.get("BENCH_SCALE") or default_scale(manifest))
    workers = int(os.environ.get("BENCH_ENGINE_WORKERS", "2"))
    parallelism = int(os.environ.get("BENCH_PARALLELISM", "3"))
    result: dict = {"scale": scale, "engine_workers": workers, "dag_parallelism": parallelism, "pgcopydb_table_jobs": 2,
                    "copy_pipe_streams": workers}
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp, Estate(manifest, with_pooler=False) as estate:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)
        bench = Bench(estate, manifest, workdir)
        log(f"generating scale {scale}")
        generated = bench.prepare(scale)
        result.update(rows=generated["rows"], generate_s=generated["generate_s"])
        log(f"{generated['rows']} rows generated in {generated['generate_s']} s")
        if generated["rows"] < MIN_ROWS and "BENCH_SCALE" not in os.environ:
            raise RuntimeError(f"only {generated['rows']} rows generated; the benchmark needs {MIN_ROWS}")

        def timed(name: str, into: str, run) -> None:
            bench.truncate()
            log(f"{name} ...")
            seconds = run()
            landed = bench.landed_rows(into)
            if landed != generated["rows"]:
                raise RuntimeError(f"{name} landed {landed} rows of {generated['rows']}")
            result[f"{name}_s"] = round(seconds, 1)
            log(f"{name}: {seconds:.1f} s")

        # The first load into a new cluster also creates its WAL segments and warms the caches; the
        # runs after it recycle them. Untimed, so whichever run comes first is not charged for it.
        bench.truncate()
        log("warm-up (untimed): copy pipe ...")
        bench.run_copy_pipe(workers)
        timed("engine", "target", lambda: bench.run_engine(workers))
        with local_airflow(workdir, estate.airflow_env(), parallelism) as cluster:
            cluster.start(METADATA_DB)

            def dag_run() -> float:
                run = run_backfill_dag(cluster)
                result["dag_wall_s"], result["dag_no_task_running_s"] = run["wall_s"], run["no_task_running_s"]
                result["dag_tasks"] = run["tasks"]
                return run["run_s"]

            timed("dag", "target", dag_run)
        timed("pg_dump_restore", "copy", bench.run_pg_dump_restore)
        timed("pgcopydb", "copy", lambda: bench.run_pgcopydb(2))
        timed("copy_pipe", "copy", lambda: bench.run_copy_pipe(workers))
        bench.truncate()
        log("chunk peak RSS ...")
        rss = bench.chunk_rss()
    result["engine_vs_copy_pipe"] = round(result["engine_s"] / result["copy_pipe_s"], 2)
    result["dag_vs_pg_dump_restore"] = round(result["dag_s"] / result["pg_dump_restore_s"], 2)
    result["dag_vs_pgcopydb"] = round(result["dag_s"] / result["pgcopydb_s"], 2)
    # The floor under both DAG targets: the bare pipe, with no planning, ledger or scheduling.
    result["copy_pipe_vs_pgcopydb"] = round(result["copy_pipe_s"] / result["pgcopydb_s"], 2)
    result["copy_pipe_vs_pg_dump_restore"] = round(result["copy_pipe_s"] / result["pg_dump_restore_s"], 2)
    result["chunk_peak_rss_mb"] = rss["small"]["peak_mb"]
    result["chunk_10x_peak_rss_mb"] = rss["large"]["peak_mb"]
    result["chunk_rss"] = rss
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    return result


def print_table(r: dict) -> None:
    print(f"\nbackfill benchmark: {r['rows']:,} rows (scale {r['scale']}), 2 cores, both servers local")
    print(f"{'method':<44}{'seconds':>10}{'rows/s':>12}")
    for label, key in (
        (f"engine (pool of {r['engine_workers']})", "engine_s"),
        (f"backfill DAG (LocalExecutor, parallelism {r['dag_parallelism']})", "dag_s"),
        ("pg_dump -Fc | pg_restore --data-only", "pg_dump_restore_s"),
        ("pgcopydb copy table-data (--table-jobs 2)", "pgcopydb_s"),
        (f"COPY binary pipe, {r['copy_pipe_streams']} streams (psql | psql)", "copy_pipe_s"),
    ):
        print(f"{label:<44}{r[key]:>10.1f}{r['rows'] / r[key]:>12,.0f}")
    print(f"engine/copy pipe {r['engine_vs_copy_pipe']} (target <= 1.1); DAG/pg_dump|restore {r['dag_vs_pg_dump_restore']} "
          f"(<= 0.5); DAG/pgcopydb {r['dag_vs_pgcopydb']} (<= 0.8)")
    print(f"the bare pipe: {r['copy_pipe_vs_pg_dump_restore']} of pg_dump|restore, {r['copy_pipe_vs_pgcopydb']} of pgcopydb; "
          f"the DAG run had no task running for {r['dag_no_task_running_s']} s; trigger CLI to end seen "
          f"{r['dag_wall_s']} s")
    small, large = r["chunk_rss"]["small"], r["chunk_rss"]["large"]
    print(f"chunk peak RSS: {small['peak_mb']} MB for {small['rows']:,} rows, {large['peak_mb']} MB for {large['rows']:,} rows (target <= 200, flat)")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
