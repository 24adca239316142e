"""Split this machine's cores the way a deployment splits machines.

In production the apps' source database runs on hardware of its own, and Airflow's
workers, the target and its pooler run elsewhere. On one 2-core machine they all share
both cores, so the apps' latency on the source also measures Airflow parsing DAG files
and the target building indexes, which no pacing of the source's reads can govern.
``CoreSplit`` pins the source server (every process it has and forks later) and the
writer that imitates the apps to the first core, and the target, the pooler, the
machine's PostgreSQL (Airflow's metadata DB) and every process this one starts
afterwards to the others. After cutover the apps' primary is the target: ``move_primary``
gives it the apps' core and moves the source to the others, so the apps' latency then
measures what the migration's reads cost the target, not Airflow's processes beside it.
The machine's PostgreSQL gets its cores back at the end.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

SOURCE_CORE = 0


def postmaster_pid(datadir: Path) -> int:
    return int((datadir / "postmaster.pid").read_text().split()[0])


def listening_pid(port: int) -> int | None:
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
            return connection.pid
    return None


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _pin(pid: int, cores: list[int]) -> dict[int, list[int]]:
    """Pin a process and its children; returns what each had before."""
    before = {}
    for process in _tree(pid):
        try:
            before[process.pid] = process.cpu_affinity()
            process.cpu_affinity(cores)
        except psutil.NoSuchProcess:
            continue
    return before


class CoreSplit:
    def __init__(self, source_datadir: Path, other_pids: list[int], metadata_port: int = 5432):
        self.source_datadir, self.other_pids, self.metadata_port = source_datadir, other_pids, metadata_port
        self.rest = [core for core in range(os.cpu_count() or 1) if core != SOURCE_CORE]
        self._restore: dict[int, list[int]] = {}
        self.primary_moved = False

    @property
    def possible(self) -> bool:
        return bool(self.rest)

    def describe(self) -> dict:
        return {"source_and_apps": [SOURCE_CORE], "airflow_target_pooler_metadata": self.rest,
                "after_cutover": "target and apps on the apps' core, source with the rest" if self.primary_moved else None}

    def move_primary(self, target_postmaster_pid: int) -> None:
        """The target, now the apps' primary, onto the apps' core; the source onto the others."""
        _pin(postmaster_pid(self.source_datadir), self.rest)
        _pin(target_postmaster_pid, [SOURCE_CORE])
        self.primary_moved = True

    def pin_servers(self) -> None:
        _pin(postmaster_pid(self.source_datadir), [SOURCE_CORE])
        for pid in self.other_pids:
            _pin(pid, self.rest)
        metadata = listening_pid(self.metadata_port)
        if metadata:
            self._restore = _pin(metadata, self.rest)

    def on_source_core(self) -> None:
        """This thread (and the threads and processes it starts) on the source's core."""
        os.sched_setaffinity(0, {SOURCE_CORE})

    def on_other_cores(self) -> None:
        os.sched_setaffinity(0, set(self.rest))

    def restore(self) -> None:
        for pid, cores in self._restore.items():
            try:
                psutil.Process(pid).cpu_affinity(cores)
            except psutil.NoSuchProcess:
                continue
        # Backends the metadata DB forked while pinned keep the pin; new ones inherit the postmaster's.
        self._restore = {}
