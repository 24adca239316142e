"""Run one DAG under CeleryExecutor on this machine and show which worker ran each task.

Starts an API server, scheduler, dag-processor and N Celery workers against the
machine's PostgreSQL (a fresh metadata DB) and Redis, triggers the DAG, waits for the
run, prints task instance -> worker, and exits non-zero unless the run succeeded and
every worker took part in the mapped tasks.

    .venv/bin/python scripts/celery_scaleout.py backfill --conf '{"...": ...}'
    .venv/bin/python scripts/celery_scaleout.py my_dag --dags-folder /path/to/dags --workers 3

Connections come from the environment (AIRFLOW_CONN_*), e.g. from
``python -m migration_engine.local.estate up``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO / "dags")]

from migration_engine.local.cluster import AirflowCluster  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dag_id")
    parser.add_argument("--dags-folder", type=Path, default=REPO / "dags")
    parser.add_argument("--conf", help="JSON conf for the run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per worker")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the run")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="pgmig-celery-"))
    with AirflowCluster(home=home, dags_folder=args.dags_folder.resolve(), workers=args.workers,
                       concurrency=args.concurrency) as cluster:
        cluster.start(f"pgmig_celery_{os.getpid()}")
        run_id = cluster.trigger(args.dag_id, args.conf)
        state = cluster.wait_for_run(args.dag_id, run_id, timeout=args.timeout)
        rows = cluster.task_hosts(args.dag_id, run_id)
    for task_id, map_index, ti_state, hostname, queue in rows:
        label = task_id if map_index < 0 else f"{task_id}[{map_index}]"
        print(f"{label:50} {ti_state or '-':10} {hostname or '-':10} {queue}")
    mapped = Counter(hostname for _, map_index, _, hostname, _ in rows if map_index >= 0)
    print(f"run {run_id}: {state}; mapped task instances per worker: {dict(mapped)}; logs in {home}")
    return 0 if state == "success" and len(mapped) == args.workers else 1


if __name__ == "__main__":
    sys.exit(main())
