"""A local Airflow home that needs no manual step: metadata DB created on first
use (on the machine's PostgreSQL), examples off, DAGs from ``dags/``.

``run_dag`` runs one DAG through Airflow (``airflow dags test``) in a child
process (``dag_test_runner``), with connections given as ``AIRFLOW_CONN_*``
variables, and answers the run's approval requests as ``local.approvals`` describes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from migration_engine.local.dag_test_runner import END_OF_RUN

REPO_ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
DEFAULT_METADATA_SERVER = os.environ.get("MIGRATION_AIRFLOW_METADATA_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")


def airflow_config(home: Path, metadata_db: str) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__MAX_MAP_LENGTH": "1024",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__API_AUTH__JWT_SECRET": "local-only-jwt-secret-for-throwaway-airflow",
        "AIRFLOW__API__SECRET_KEY": "local-only-secret-key-for-throwaway-airflow",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "plugins"), str(REPO_ROOT / "dags")]),
    }


def metadata_db_url(dbname: str, server: str = DEFAULT_METADATA_SERVER) -> str:
    base = server.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+psycopg2://', 1)}/{dbname}"


def create_metadata_db(dbname: str, server: str = DEFAULT_METADATA_SERVER, fresh: bool = True) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists and fresh:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return metadata_db_url(dbname, server)


def drop_metadata_db(dbname: str, server: str = DEFAULT_METADATA_SERVER) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


@dataclass
class AirflowHome:
    home: Path
    metadata_db: str
    _runner: subprocess.Popen | None = field(default=None, init=False, repr=False, compare=False)
    _runner_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **airflow_config(self.home, self.metadata_db)}

    def airflow(self, *args: str, extra_env: dict | None = None, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        env = {**self.env, **(extra_env or {})}
        proc = subprocess.run(
            [str(VENV_BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
        )
        if check and proc.returncode != 0:
            raise AirflowCommandError(args, proc)
        return proc

    def migrate(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")

    def run_dag(
        self, dag_id: str, conf: dict | None = None, extra_env: dict | None = None, timeout: float = 1200, on_line=None,
        logical_date: str | None = None, approval: str | None = "Approve",
    ) -> DagRunResult:
        """``airflow dags test``; ``on_line`` sees each output line as it comes (for progress).

        Each approval request the run waits on is answered ``approval`` (an option such as
        Approve or Reject) as the harness user; with None nobody answers here and the run
        waits for an answer from elsewhere. The same ``logical_date`` again clears that
        run's task instances and runs it anew. Runs go to this home's ``dag_test_runner``
        process; a run that finds it busy (runs in parallel), or that changes Airflow's own
        settings, gets a runner of its own. A run past ``timeout`` is killed with its runner.
        """
        env = {**self.env, **(extra_env or {})}
        request = {"dag_id": dag_id, "logical_date": logical_date, "conf": conf, "env": env, "approval": approval}
        started_at = self._now()
        shared = self._runner_lock.acquire(blocking=False)
        try:
            runner = self._shared_runner() if shared and _airflow_settings(env) == _airflow_settings(self.env) else _start_runner(env)
            try:
                returncode, output = _run_on(runner, request, timeout, on_line)
            except BaseException:
                runner.kill()  # mid-run: what it prints next belongs to no request
                raise
            if runner is not self._runner:
                runner.stdin.close()
                runner.wait()
        finally:
            if shared:
                self._runner_lock.release()
        return DagRunResult(dag_id, returncode, output, "", self._task_states(dag_id, started_at))

    def _shared_runner(self) -> subprocess.Popen:
        if self._runner is None or self._runner.poll() is not None:
            self._runner = _start_runner(self.env)
        return self._runner

    def close(self) -> None:
        """End this home's runner process, if it has one."""
        if self._runner is not None and self._runner.poll() is None:
            self._runner.stdin.close()
            self._runner.wait(timeout=60)

    def _awaiting_input(self, dag_id: str) -> bool:
        with self._metadata() as conn:
            return conn.execute(
                "SELECT EXISTS (SELECT 1 FROM task_instance WHERE dag_id = %s AND state = 'awaiting_input')", (dag_id,)
            ).fetchone()[0]

    def _metadata(self) -> psycopg.Connection:
        return psycopg.connect(self.metadata_db.replace("postgresql+psycopg2://", "postgresql://", 1))

    def _now(self):
        with self._metadata() as conn:
            return conn.execute("SELECT now()").fetchone()[0]

    def _task_states(self, dag_id: str, since) -> dict[str, str]:
        """Final state of every task instance of the run this call made (or re-ran), from the
        metadata DB; empty when it made none (e.g. Params refused at trigger time)."""
        with self._metadata() as conn:
            rows = conn.execute(
                """
                SELECT ti.task_id, ti.map_index, ti.state
                FROM task_instance ti
                WHERE ti.dag_id = %(dag_id)s AND ti.run_id = (
                    SELECT dr.run_id FROM dag_run dr
                    WHERE dr.dag_id = %(dag_id)s AND dr.updated_at >= %(since)s
                    ORDER BY dr.id DESC LIMIT 1)
                """,
                {"dag_id": dag_id, "since": since},
            ).fetchall()
        return {(task if index < 0 else f"{task}[{index}]"): str(state) for task, index, state in rows}


def _airflow_settings(env: dict) -> dict:
    return {key: value for key, value in env.items() if key.startswith("AIRFLOW__")}


def _start_runner(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "migration_engine.local.dag_test_runner"], env=env, cwd=REPO_ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
    )


def _run_on(runner: subprocess.Popen, request: dict, timeout: float, on_line) -> tuple[int, str]:
    """One request to a runner: its exit status (the runner's own when it died or was killed) and output."""
    lines: list[str] = []
    deadline = threading.Timer(timeout, runner.kill)
    deadline.start()
    try:
        runner.stdin.write(json.dumps(request) + "\n")
        runner.stdin.flush()
        for line in runner.stdout:
            if line.startswith(END_OF_RUN):
                return int(line[len(END_OF_RUN):]), "".join(lines)[:-1]  # less the newline before the marker
            lines.append(line)
            if on_line:
                on_line(line.rstrip("\n"))
    except BrokenPipeError:
        pass
    finally:
        deadline.cancel()
    return runner.wait(), "".join(lines)


class AirflowCommandError(RuntimeError):
    def __init__(self, args, proc: subprocess.CompletedProcess):
        super().__init__(f"airflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        self.proc = proc


@dataclass
class DagRunResult:
    dag_id: str
    returncode: int
    stdout: str
    stderr: str
    task_states: dict[str, str]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and bool(self.task_states) and all(
            s in ("success", "skipped") for s in self.task_states.values()
        )

    def state_of(self, task_id: str) -> str | None:
        return self.task_states.get(task_id)
