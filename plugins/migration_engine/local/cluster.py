"""A real Airflow on this machine, without Docker: api-server, scheduler,
dag-processor and, with the CeleryExecutor, N Celery workers, against the machine's
PostgreSQL (fresh metadata DB) and Redis. It shows that the same DAGs run unchanged,
that mapped tasks spread over workers, and what a run survives when one of these
processes is stopped and started again.

Each worker gets its own Celery hostname and, through ``hostname_callable``, its
own ``task_instance.hostname`` (on one machine they would otherwise all record the
same FQDN), so the metadata DB says which worker ran which task. A queue unique to
the cluster keeps its tasks away from any other worker on the same Redis.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from migration_engine import env_contract
from migration_engine.local.airflow_env import VENV_BIN, AirflowHome, create_metadata_db, drop_metadata_db
from migration_engine.local.servers import free_port, wait_until

WORKER_NAME_VARIABLE = "MIGRATION_WORKER_NAME"
DEFAULT_REDIS_URL = os.environ.get("MIGRATION_CELERY_BROKER", "redis://127.0.0.1:6379/0")


def _session_members(session_id: int) -> list[int]:
    """Every process whose session is ``session_id`` (field 6 of /proc/PID/stat)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[3]) == session_id:
            members.append(int(stat.parent.name))
    return members


def worker_name() -> str:
    """``[core] hostname_callable`` of the workers: their own name, else the FQDN."""
    return os.environ.get(WORKER_NAME_VARIABLE) or socket.getfqdn()


@dataclass
class AirflowCluster:
    home: Path
    dags_folder: Path
    executor: str = "CeleryExecutor"
    workers: int = 2
    concurrency: int = 2
    broker_url: str = DEFAULT_REDIS_URL
    extra_env: dict[str, str] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)
    queue: str = field(default_factory=lambda: f"migration-scaleout-{os.getpid()}-{int(time.time())}")
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    commands: dict[str, tuple[tuple[str, ...], dict[str, str]]] = field(default_factory=dict)
    airflow: AirflowHome | None = None
    metadata_dbname: str | None = None

    def start(self, metadata_dbname: str) -> AirflowCluster:
        self.home.mkdir(parents=True, exist_ok=True)
        self.metadata_dbname = metadata_dbname
        metadata_db = create_metadata_db(metadata_dbname)
        self.airflow = AirflowHome(self.home, metadata_db)
        self.airflow.airflow("db", "migrate", extra_env=self.env)
        self._import_pools()
        self._spawn("api-server", "api-server", "--port", str(self.api_port), "--workers", "1")
        if not wait_until(self._api_ready, timeout=180, interval=1):
            raise RuntimeError(f"the API server did not answer; see {self.home / 'api-server.log'}")
        self._spawn("scheduler", "scheduler")
        self._spawn("dag-processor", "dag-processor")
        for n in range(1, self.workers + 1):
            name = f"worker{n}"
            self._spawn(name, "celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", self.queue,
                        "--concurrency", str(self.concurrency), "--skip-serve-logs",
                        env={WORKER_NAME_VARIABLE: name})
        return self

    def _import_pools(self) -> None:
        """The package's pools, sized by DB_POOL_MAX, as a deployment would have them."""
        pools = self.home / "pools.json"
        with open(pools, "w") as out:
            if env_contract.main(["pools"], environ={**os.environ, **self.extra_env}, out=out) != 0:
                raise RuntimeError("the pools could not be derived from the environment (see the error above)")
        self.airflow.airflow("pools", "import", str(pools), extra_env=self.env)

    @property
    def env(self) -> dict[str, str]:
        result_db = self.airflow.metadata_db.replace("postgresql+psycopg2://", "db+postgresql://", 1)
        return {
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_name",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": result_db,
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            **self.extra_env,
        }

    def _spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.commands[name] = (args, env or {})
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.processes[name] = subprocess.Popen(
            [str(VENV_BIN / "airflow"), *args], env={**self.airflow.env, **self.env, **(env or {})},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.home,
        )
        log.close()

    def kill(self, name: str) -> None:
        """SIGKILL a component and every process of its session, as stopping its container would.

        The session, not the process group: Airflow puts each task runner in a group of its own,
        so a LocalExecutor scheduler's tasks would otherwise outlive it."""
        process = self.processes.pop(name)
        for pid in _session_members(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()

    def restart(self, name: str) -> None:
        """Start a killed component again with its first command line."""
        args, env = self.commands[name]
        self._spawn(name, *args, env=env)

    def _api_ready(self) -> bool:
        self._check_alive()
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.api_port)) == 0

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {process.returncode}; see {self.home / (name + '.log')}")

    def _metadata(self) -> psycopg.Connection:
        return psycopg.connect(self.airflow.metadata_db.replace("postgresql+psycopg2://", "postgresql://", 1), autocommit=True)

    def pause(self, dag_id: str) -> None:
        self._set_paused(dag_id, "pause")

    def unpause(self, dag_id: str) -> None:
        self._set_paused(dag_id, "unpause")

    def _set_paused(self, dag_id: str, command: str, parse_timeout: float = 180) -> None:
        """Once the dag-processor has parsed the DAG (the CLI refuses an unknown one), pause or unpause it."""
        def parsed() -> bool:
            self._check_alive()
            with self._metadata() as conn:
                return conn.execute("SELECT 1 FROM dag WHERE dag_id = %s", (dag_id,)).fetchone() is not None

        if not wait_until(parsed, timeout=parse_timeout, interval=1):
            raise RuntimeError(f"DAG {dag_id} was not parsed; see {self.home / 'dag-processor.log'}")
        self.airflow.airflow("dags", command, dag_id, extra_env=self.env)

    def trigger(self, dag_id: str, conf: str | None = None) -> str:
        """Unpause the DAG (a deployment may pause new DAGs) and start a run; returns the run id."""
        self.unpause(dag_id)
        args = ["dags", "trigger", dag_id, "--output", "json"] + (["--conf", conf] if conf else [])
        self.airflow.airflow(*args, extra_env=self.env)
        with self._metadata() as conn:
            return conn.execute("SELECT run_id FROM dag_run WHERE dag_id = %s ORDER BY id DESC LIMIT 1", (dag_id,)).fetchone()[0]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> str:
        state = {"value": None}

        def finished() -> bool:
            self._check_alive()
            with self._metadata() as conn:
                state["value"] = conn.execute("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s",
                                              (dag_id, run_id)).fetchone()[0]
            return state["value"] in ("success", "failed")

        if not wait_until(finished, timeout=timeout, interval=2):
            raise RuntimeError(f"run {run_id} of {dag_id} still {state['value']} after {timeout:.0f} s")
        return state["value"]

    def task_hosts(self, dag_id: str, run_id: str) -> list[tuple[str, int, str, str, str]]:
        """(task_id, map_index, state, hostname, queue) of every task instance of the run."""
        with self._metadata() as conn:
            return conn.execute(
                "SELECT task_id, map_index, state, hostname, queue FROM task_instance "
                "WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index", (dag_id, run_id)).fetchall()

    def pools(self) -> dict[str, int]:
        with self._metadata() as conn:
            return dict(conn.execute("SELECT pool, slots FROM slot_pool").fetchall())

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()
        if self.metadata_dbname:
            drop_metadata_db(self.metadata_dbname)
            self.metadata_dbname = None

    def __enter__(self) -> AirflowCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
