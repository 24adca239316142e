"""Interleavings of the apps, reconcile runs and the transitions, by a seeded random
scheduler on real servers (one table, `recruiter.users`, so each step is quick).

Each step is one of: app writes on the current primary (with dual-write, some of
the secondary writes dropped; through the pooler when the target is primary),
a reconcile run started (its phase and epoch read), a started run resumed (a
table's find, confirm and repair under the epoch it read), a cutover (claim,
flip, and a smoke failure now and then that flips back), a rollback (from
`cut_over` or `finalized`), a finalize (claim, dual-write off), the way back to
a soak, a flip of an old transition re-run (a cleared task), a started run
resumed in a child process that is SIGKILLed at a random moment (a killed task),
the pooler stopped or started. The transitions make the same engine calls,
through the same fence, as their DAGs.

After every step:
- every row the apps wrote on their primary since it became the primary holds
  what they wrote (the migration never wrote the primary);
- a resumed run refused exactly when the ledger had moved since it started, and
  an old flip always refused;
- the ledger and the read-path flags agree, and no claim is left open.

At the end the writers stop, the pooler is up, a reconcile in the current
direction runs, and both sides hold the same rows.

``INTERLEAVING_SEEDS`` (comma-separated) and ``INTERLEAVING_STEPS`` (per seed)
set the size; ``make soak-interleaving`` runs a longer one. Not covered here:
Airflow itself (DAG runs, their scheduling): those are the DAG-level tests.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field

import psycopg
import pytest

from migration_engine import ledger, read_path
from migration_engine.endpoints import EndpointError
from migration_engine.reconcile.engine import direction_for_phase, reconcile_table
from tests.integration.lifecycle_support import CONTROL, target

pytestmark = [pytest.mark.integration]

SEEDS = [int(s) for s in os.environ.get("INTERLEAVING_SEEDS", "1,2,3").split(",")]
STEPS = int(os.environ.get("INTERLEAVING_STEPS", "70"))
DROP = 0.25
TABLE = "recruiter.users"
# A started reconcile run resumed in a process of its own, to be SIGKILLed.
KILLED_CHILD = textwrap.dedent("""
    import os
    from migration_engine.endpoints import from_url
    from migration_engine.manifest import DEFAULT_MANIFEST, load_manifest
    from migration_engine.reconcile.engine import reconcile_table
    table = load_manifest(DEFAULT_MANIFEST).table(os.environ["TABLE"])
    reconcile_table(table, from_url("source", os.environ["SOURCE_URL"]), from_url("target", os.environ["TARGET_URL"]),
                    run_id=os.environ["RUN_ID"], direction=os.environ["DIRECTION"], control_schema="migration_control",
                    grace_seconds=0, epoch=int(os.environ["EPOCH"]))
""")
PRIMARY_SIDE = {"dual_write": "source", "soak": "source", "rolled_back": "source",
                "cut_over": "target", "finalized": "target"}


@dataclass
class Figures:
    sequences: int = 0
    steps: int = 0
    app_writes: int = 0
    writes_checked: int = 0
    refused_runs: int = 0
    killed_runs: int = 0
    repaired_rows: int = 0
    lost: int = 0
    kinds: dict = field(default_factory=dict)


FIGURES = Figures()


@pytest.fixture(scope="module")
def migration_scale() -> float:
    return 0.05


@pytest.fixture(scope="module", autouse=True)
def print_figures():
    yield
    print(f"\ninterleaving figures: {FIGURES}")


class Scheduler:
    def __init__(self, estate, manifest, seed: int):
        self.estate, self.manifest, self.rng, self.seed = estate, manifest, random.Random(seed), seed
        self.table = manifest.table(TABLE)
        self.pooler_up = True
        self.started: list[ledger.Epoch] = []
        self.old_flips: list[tuple[int, str]] = []
        self.step_no = 0
        self.primary = None
        self.written: dict[str, str | None] = {}  # key -> what the apps last wrote on the current primary
        with estate.source_endpoint("recruiter").connect() as conn:
            self.keys = [row[0] for row in conn.execute("SELECT id FROM public.users ORDER BY id LIMIT 30")]

    # -- the world ---------------------------------------------------------------------------------------------
    def state(self) -> tuple[ledger.Epoch, dict]:
        with target(self.estate) as conn:
            return ledger.current_epoch(conn, CONTROL), read_path.read_flags(conn, self.manifest)["recruiter"]

    def connect(self, side: str) -> psycopg.Connection:
        if side == "source":
            return self.estate.source_endpoint("recruiter").connect(autocommit=True)
        return self.estate.pooler_endpoint().connect(autocommit=True)

    def rows(self, side: str) -> dict:
        relation = "public.users" if side == "source" else "recruiter.users"
        endpoint = self.estate.source_endpoint("recruiter") if side == "source" else self.estate.target_endpoint()
        with endpoint.connect() as conn:
            return {k: (u, p) for k, u, p in conn.execute(f"SELECT id, username, password FROM {relation}")}

    # -- steps -------------------------------------------------------------------------------------------------
    def app_writes(self, flags: dict) -> str:
        primary = flags["primary_side"]
        secondary = "target" if primary == "source" else "source"
        for _ in range(self.rng.randint(1, 3)):
            op = self.rng.choice(["insert", "update", "update", "delete"])
            if op == "insert" or not self.keys:
                key, value = f"app-{self.seed}-{self.step_no}-{self.rng.randrange(10**6)}", "new"
                self.keys.append(key)
            else:
                key, value = self.rng.choice(self.keys), None if op == "delete" else f"v{self.step_no}"
            if not self._write(primary, key, value):
                return "app write refused (pooler down)"
            self.written[key] = value
            FIGURES.app_writes += 1
            if flags["dual_write"] and self.rng.random() > DROP:
                self._write(secondary, key, value)
        return "app writes"

    def _write(self, side: str, key: str, value: str | None) -> bool:
        relation = "public.users" if side == "source" else "recruiter.users"
        try:
            with self.connect(side) as conn:
                if value is None:
                    conn.execute(f"DELETE FROM {relation} WHERE id = %s", (key,))
                else:
                    conn.execute(f"INSERT INTO {relation} (id, username, password) VALUES (%s, %s, %s) "
                                 "ON CONFLICT (id) DO UPDATE SET password = EXCLUDED.password", (key, key, value))
        except (EndpointError, psycopg.OperationalError):
            if side == "target" and not self.pooler_up:
                return False
            raise
        return True

    def start_reconcile(self, epoch: ledger.Epoch) -> str:
        if direction_for_phase(epoch.phase or "") is None or epoch.claimed_by:
            return "no reconcile in this phase"
        self.started.append(epoch)
        return f"reconcile started in {epoch.phase}"

    def resume_reconcile(self, now: ledger.Epoch) -> str:
        run = self.started.pop(self.rng.randrange(len(self.started)))
        stale = run.number != now.number
        try:
            result = reconcile_table(self.table, self.estate.source_endpoint("recruiter"), self.estate.target_endpoint(),
                                     run_id=f"interleaving-{self.seed}-{self.step_no}", control_schema=CONTROL,
                                     direction=direction_for_phase(run.phase), grace_seconds=0, epoch=run.number)
        except ledger.StaleEpoch:
            assert stale, f"a run started at the current epoch {run.number} was refused"
            FIGURES.refused_runs += 1
            return f"stale reconcile from {run.phase} refused"
        assert not stale, f"a run started in {run.phase} at epoch {run.number} wrote at epoch {now.number}"
        FIGURES.repaired_rows += result.repaired
        return f"reconcile in {run.phase}: {result.repaired} repaired"

    def kill_reconcile(self) -> str:
        """A started run resumed in a child process, SIGKILLed at a random moment: before, during or after
        its repair batches. Whatever it committed went through the fence; ``check`` then holds or fails."""
        run = self.started.pop(self.rng.randrange(len(self.started)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TABLE": TABLE, "EPOCH": str(run.number),
               "DIRECTION": direction_for_phase(run.phase).value, "RUN_ID": f"interleaving-{self.seed}-{self.step_no}",
               "SOURCE_URL": self.estate.source_url("recruiter"), "TARGET_URL": self.estate.target_url()}
        child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        time.sleep(self.rng.uniform(0.2, 2.0))
        child.send_signal(signal.SIGKILL)
        child.wait()
        FIGURES.killed_runs += 1
        return f"reconcile from {run.phase} SIGKILLed"

    def transition(self, epoch: ledger.Epoch) -> str:
        phase, run_id = epoch.phase, f"interleaving-{self.seed}-{self.step_no}"
        with target(self.estate) as conn:
            def flip(side: str, at: int) -> None:
                read_path.apply(conn, read_path.read_path_statements(self.manifest, side, run_id), dry_run=False,
                                log=lambda _line: None, control_schema=CONTROL, epoch=at)
                self.old_flips.append((at, side))

            def dual_write(on: bool, at: int) -> None:
                read_path.apply(conn, read_path.dual_write_statements(self.manifest, on, run_id), dry_run=False,
                                log=lambda _line: None, control_schema=CONTROL, epoch=at)

            if phase == "soak":
                claimed = ledger.claim(conn, CONTROL, epoch.number, "cutover", run_id, "cutover")
                flip("target", claimed)
                if self.rng.random() < 0.25:  # a smoke check fails
                    flip("source", claimed)
                    ledger.advance(conn, CONTROL, "rolled_back", "cutover", run_id, epoch=claimed, through=("cut_over",))
                    return "cutover, smoke failed, rolled back"
                ledger.advance(conn, CONTROL, "cut_over", "cutover", run_id, epoch=claimed)
                return "cutover"
            if phase == "cut_over" and self.rng.random() < 0.4:
                claimed = ledger.claim(conn, CONTROL, epoch.number, "finalize", run_id, "finalize")
                dual_write(False, claimed)
                ledger.advance(conn, CONTROL, "finalized", "finalize", run_id, epoch=claimed)
                return "finalize"
            if phase in ("cut_over", "finalized"):
                claimed = ledger.claim(conn, CONTROL, epoch.number, "rollback", run_id, "rollback")
                dual_write(True, claimed)
                flip("source", claimed)
                ledger.advance(conn, CONTROL, "rolled_back", "rollback", run_id, epoch=claimed)
                return f"rollback from {phase}"
            if phase == "rolled_back":
                ledger.advance(conn, CONTROL, "soak", "reconcile", run_id, epoch=epoch.number)
                return "back to soak"
        return f"no transition from {phase}"

    def old_flip(self, epoch: ledger.Epoch, flags_before: dict) -> str:
        at, side = self.rng.choice(self.old_flips)
        with target(self.estate) as conn, pytest.raises(ledger.StaleEpoch, match="refused"):
            read_path.apply(conn, read_path.read_path_statements(self.manifest, side, "cleared"), dry_run=False,
                            log=lambda _line: None, control_schema=CONTROL, epoch=at)
        assert self.state()[1]["primary_side"] == flags_before["primary_side"]
        return f"old flip to {side} (epoch {at}) refused"

    def toggle_pooler(self) -> str:
        if self.pooler_up:
            self.estate.pooler.stop()
        else:
            self.estate.pooler.start()
        self.pooler_up = not self.pooler_up
        return "pooler " + ("up" if self.pooler_up else "down")

    # -- the loop ----------------------------------------------------------------------------------------------
    def step(self) -> str:
        self.step_no += 1
        epoch, flags = self.state()
        roll = self.rng.random()
        if roll < 0.40:
            what = self.app_writes(flags)
        elif roll < 0.55:
            what = self.start_reconcile(epoch)
        elif roll < 0.65 and self.started:
            what = self.resume_reconcile(epoch)
        elif roll < 0.72 and self.started:
            what = self.kill_reconcile()
        elif roll < 0.84:
            what = self.transition(epoch)
        elif roll < 0.92 and self.old_flips:
            what = self.old_flip(epoch, flags)
        elif roll < 0.96:
            what = self.toggle_pooler()
        else:
            what = self.app_writes(flags)
        self.check()
        return what

    def check(self) -> None:
        epoch, flags = self.state()
        assert epoch.claimed_by is None, f"a claim was left open: {epoch}"
        assert flags["primary_side"] == PRIMARY_SIDE[epoch.phase], (epoch, flags)
        assert flags["dual_write"] == (epoch.phase != "finalized"), (epoch, flags)
        if flags["primary_side"] != self.primary:
            self.primary, self.written = flags["primary_side"], {}
        rows = self.rows(self.primary)
        for key, value in self.written.items():
            FIGURES.writes_checked += 1
            held = rows.get(key, (None, None))[1]
            if held != value:
                FIGURES.lost += 1
            assert held == value, f"{key} on the {self.primary} (the apps' primary): the apps wrote {value!r}, it holds {held!r}"

    def finish(self) -> None:
        if not self.pooler_up:
            self.toggle_pooler()
        epoch, _flags = self.state()
        result = reconcile_table(self.table, self.estate.source_endpoint("recruiter"), self.estate.target_endpoint(),
                                 run_id=f"interleaving-{self.seed}-final", control_schema=CONTROL,
                                 direction=direction_for_phase(epoch.phase), grace_seconds=0, epoch=epoch.number)
        assert result.unrepaired == 0, result.summary()
        assert self.rows("source") == self.rows("target")


@pytest.mark.parametrize("seed", SEEDS)
def test_random_interleavings_never_write_the_apps_primary(soaking, estate, manifest, seed):
    scheduler = Scheduler(estate, manifest, seed)
    scheduler.check()
    log = []
    try:
        for _ in range(STEPS):
            log.append(scheduler.step())
            FIGURES.steps += 1
            kind = log[-1].split(" (")[0].split(":")[0]
            FIGURES.kinds[kind] = FIGURES.kinds.get(kind, 0) + 1
    except AssertionError as exc:
        raise AssertionError(f"seed {seed}, step {scheduler.step_no}: {exc}\nlast steps: {log[-10:]}") from None
    scheduler.finish()
    FIGURES.sequences += 1
