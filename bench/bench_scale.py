"""Benchmark: how the backfill and the reconcile grow with the data, at about 1 M, 5 M and 20 M rows.

For each size, on a fresh pair of throwaway servers: the generated Credity dataset
at the scale that gives about that many rows; the backfill by the engine
(``plan_all`` + ``copy_chunk`` in a pool of ``BENCH_ENGINE_WORKERS`` = 2
processes, as bench_backfill.py runs it); then the reconcile's check of every
table on the copied data (one bucketed hash scan per side, both sides at once),
in a process of its own. Reported per size: seconds per million rows for each,
and the peak RSS of the processes that did the work (each copy worker, the
reconcile process). Growth is the seconds per million rows at the largest size
divided by that at the smallest: 1.0 is linear.

Sizes: ``BENCH_SCALE_ROWS`` (comma-separated, default 1000000,5000000,20000000).
Writes bench/results/scale.json and prints a table.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "dags"), str(ROOT / "bench")]

from bench_backfill import Bench, log  # noqa: E402

from migration_engine.chunks import plan_all  # noqa: E402
from migration_engine.copier import copy_chunk  # noqa: E402
from migration_engine.generator import planned_rows  # noqa: E402
from migration_engine.local.estate import Estate  # noqa: E402
from migration_engine.manifest import load_manifest  # noqa: E402
from migration_engine.reconcile import reconcile_table  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "scale.json"
DEFAULT_SIZES = (1_000_000, 5_000_000, 20_000_000)


def scale_for(manifest, rows: int) -> float:
    """The generator's scale that plans about ``rows`` rows."""
    return round(rows / sum(planned_rows(manifest, 1).values()), 3)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _copy_one(job) -> dict:
    source, target, manifest_file, chunk = job
    result = copy_chunk(source, target, load_manifest(manifest_file), chunk, run_id="bench-scale")
    return {"rows": result["rows"], "peak_rss_mb": peak_rss_mb()}


def _reconcile_all(sources: dict, target, manifest_file: str, queue) -> None:
    manifest = load_manifest(manifest_file)
    started = time.monotonic()
    checked = 0
    for table in manifest.tables:
        result = reconcile_table(table, sources[table.service], target, run_id="bench-scale", direction="source_to_target",
                                 control_schema=manifest.control_schema, find_only=True)
        if result.drifted:
            raise RuntimeError(f"{table.qualified}: {result.drifted} rows drifted after the copy")
        checked += result.checked_rows
    queue.put({"seconds": time.monotonic() - started, "rows": checked, "peak_rss_mb": peak_rss_mb()})


def measure(manifest, rows_wanted: int, workers: int) -> dict:
    scale = scale_for(manifest, rows_wanted)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp, Estate(manifest, with_pooler=False) as estate:
        os.chmod(tmp, 0o755)
        bench = Bench(estate, manifest, Path(tmp))
        log(f"~{rows_wanted:,} rows: generating scale {scale}")
        generated = bench.prepare(scale)
        log(f"{generated['rows']:,} rows generated in {generated['generate_s']} s; backfill ...")
        started = time.monotonic()
        chunks = plan_all(manifest, bench.sources)
        jobs = [(bench.sources[manifest.table(c.table).service], bench.target, str(manifest.file), c.to_dict())
                for c in chunks]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            copied = list(pool.map(_copy_one, jobs))
        backfill_s = time.monotonic() - started
        if sum(c["rows"] for c in copied) != generated["rows"]:
            raise RuntimeError(f"the backfill copied {sum(c['rows'] for c in copied)} of {generated['rows']} rows")
        log(f"backfill: {backfill_s:.1f} s over {len(chunks)} chunks; reconcile ...")
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        child = context.Process(target=_reconcile_all, args=(bench.sources, bench.target, str(manifest.file), queue))
        child.start()
        reconciled = queue.get()
        child.join()
        log(f"reconcile: {reconciled['seconds']:.1f} s over {reconciled['rows']:,} rows")
    millions = generated["rows"] / 1e6
    return {
        "rows": generated["rows"], "scale": scale, "chunks": len(chunks),
        "backfill_s": round(backfill_s, 1), "reconcile_s": round(reconciled["seconds"], 1),
        "backfill_s_per_m_rows": round(backfill_s / millions, 2),
        "reconcile_s_per_m_rows": round(reconciled["seconds"] / millions, 2),
        "copy_worker_peak_rss_mb": max(c["peak_rss_mb"] for c in copied),
        "reconcile_peak_rss_mb": reconciled["peak_rss_mb"],
        "peak_rss_mb": max(max(c["peak_rss_mb"] for c in copied), reconciled["peak_rss_mb"]),
    }


def main() -> dict:
    manifest = load_manifest()
    sizes = [int(s) for s in os.environ.get("BENCH_SCALE_ROWS", ",".join(map(str, DEFAULT_SIZES))).split(",")]
    workers = int(os.environ.get("BENCH_ENGINE_WORKERS", "2"))
    load_at_start = os.getloadavg()[0]
    measured = [measure(manifest, rows, workers) for rows in sizes]
    first, last = measured[0], measured[-1]
    result = {
        "engine_workers": workers,
        "load_average_at_start": load_at_start,
        "sizes": measured,
        "backfill_growth": round(last["backfill_s_per_m_rows"] / first["backfill_s_per_m_rows"], 2),
        "reconcile_growth": round(last["reconcile_s_per_m_rows"] / first["reconcile_s_per_m_rows"], 2),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'rows':>12} {'backfill s':>11} {'s/M rows':>9} {'reconcile s':>12} {'s/M rows':>9} {'peak RSS MB':>12}")
    for size in measured:
        print(f"{size['rows']:>12,} {size['backfill_s']:>11} {size['backfill_s_per_m_rows']:>9} {size['reconcile_s']:>12} "
              f"{size['reconcile_s_per_m_rows']:>9} {size['peak_rss_mb']:>12}")
    print(f"growth (s per M rows, largest / smallest): backfill {result['backfill_growth']}, "
          f"reconcile {result['reconcile_growth']}; written to {RESULTS.relative_to(ROOT)}")
    return result


if __name__ == "__main__":
    main()
