"""The phase ledger: a small control schema in the target that records which
phase of the runbook the migration is in, who moved it there and when.

Every phase DAG calls ``require_phase`` first and ``advance`` last, so the
runbook's order is enforced by the software. Phases, in order::

    preflight_passed -> schema_applied -> backfilled -> verified
        -> dual_write -> soak -> cut_over -> finalized
    soak -> flip_unknown -> rolled_back
    cut_over | finalized -> rolled_back -> dual_write | soak

``flip_unknown`` is where a cutover leaves the ledger when its read-path flip
failed after it started: the flip may have committed, so the apps may be on
either side. No reconcile runs there (there is no known primary); rollback
accepts it and puts every flag back on the source.

After a rollback the read path is back on the source with dual-write still on,
so the migration resumes the dual-write window (``dual_write``: reconcile until
clean) or, when reconciles are already clean, a new ``soak``; it never jumps
straight to ``cut_over`` again. Re-running the phase the ledger is already in
is allowed and writes nothing. ``facts`` holds what phases prove on the way
(schema fingerprints, backups, summaries) for later phases to check against.

One query tells a human where the migration stands::

    SELECT current_phase, since, by_dag, by_run, may_advance_to, history
    FROM migration_control.status;

**The fence.** ``fence`` holds one row: the epoch, which every phase transition
moves on by one, and the phase it moved to. A run reads the epoch when it starts;
each write it makes toward the apps' data or control state (a repair batch, a
flag change, a grant change) goes through ``fenced``, which reads the row
``FOR SHARE`` in a transaction that stays open until the write has committed,
and refuses when the epoch has moved. ``advance`` takes the row ``FOR UPDATE``,
so a phase move waits for the writes in flight and every later write sees it.
A stale run, a cleared task of an old run or a concurrent DAG therefore refuses,
naming the current phase, and writes nothing. Two DAGs that may both start in the
same phase (rollback and finalize in ``cut_over``), and the cutover, whose flip
changes the apps' primary before its ledger move, each ``claim`` the fence before
their first dangerous write: the epoch moves on with the phase unchanged, so every
other run's next write refuses, whichever started first, and until the claiming
run moves the ledger no reconcile run may start (``claimed_by``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from migration_engine import catalog, sqlfiles
from migration_engine.checks import CheckFailed

PHASES = (
    "preflight_passed",
    "schema_applied",
    "backfilled",
    "verified",
    "dual_write",
    "soak",
    "cut_over",
    "flip_unknown",
    "finalized",
    "rolled_back",
)

# The single source of truth for the order; the ledger's table is a readable copy.
ALLOWED_TRANSITIONS: frozenset[tuple[str | None, str]] = frozenset(
    {
        (None, "preflight_passed"),
        ("preflight_passed", "schema_applied"),
        ("schema_applied", "backfilled"),
        ("backfilled", "verified"),
        ("verified", "dual_write"),
        ("dual_write", "soak"),
        ("soak", "cut_over"),
        # The cutover's flip failed after it started: its outcome is unknown until a rollback settles it.
        ("soak", "flip_unknown"),
        ("flip_unknown", "rolled_back"),
        ("cut_over", "finalized"),
        ("cut_over", "rolled_back"),
        ("rolled_back", "dual_write"),
        ("rolled_back", "soak"),
        # Within the retention window: the apps' writes restored on the sources, the read path back there.
        ("finalized", "rolled_back"),
    }
)

# Which DAG moves the ledger into each phase: named in refusals as the next step.
PRODUCED_BY = {
    "preflight_passed": "preflight",
    "schema_applied": "schema_baseline",
    "backfilled": "backfill",
    "verified": "verify",
    "dual_write": "dual_write",
    "soak": "reconcile",
    "cut_over": "cutover",
    "flip_unknown": "cutover",
    "rolled_back": "rollback",
    "finalized": "finalize",
}

NOT_STARTED = "not_started"


class PhaseError(CheckFailed):
    """Work asked for out of the runbook's order; the message says what to run instead."""


class StaleEpoch(PhaseError):
    """A write by a run that started before the ledger's last move; nothing was written."""


@dataclass(frozen=True)
class Epoch:
    """How many times the ledger has moved, and the phase it is in: what a run started under."""

    number: int
    phase: str | None
    # The dag/run that claimed the fence and has not moved the ledger yet: a transition under way.
    claimed_by: str | None = None


@dataclass(frozen=True)
class PhaseState:
    phase: str | None
    at: datetime | None = None
    dag_id: str | None = None
    run_id: str | None = None
    actor: str | None = None

    def describe(self) -> str:
        if self.phase is None:
            return "the ledger is empty (no phase recorded yet)"
        return f"the ledger says {self.phase} since {self.at:%Y-%m-%d %H:%M:%S %Z} (dag {self.dag_id}, run {self.run_id})"


@dataclass(frozen=True)
class Fact:
    key: str
    value: object
    recorded_at: datetime
    dag_id: str
    run_id: str


def _objects(control_schema: str) -> dict[str, str | tuple[str, str]]:
    return {
        "control_schema": control_schema,
        "phase_transitions": (control_schema, "phase_transitions"),
        "allowed_transitions": (control_schema, "allowed_transitions"),
        "facts": (control_schema, "facts"),
        "fence": (control_schema, "fence"),
        "status": (control_schema, "status"),
    }


def _run(conn: psycopg.Connection, control_schema: str, name: str, params: dict | None = None) -> psycopg.Cursor:
    return sqlfiles.run(conn, f"ledger/{name}", params, **_objects(control_schema))


def check_transition(current: str | None, to_phase: str) -> bool:
    """True when moving ``current -> to_phase`` is a new transition, False for a
    harmless re-run of the current phase; PhaseError when the order forbids it."""
    if to_phase not in PHASES:
        raise PhaseError(f"unknown phase {to_phase!r}; phases are: {', '.join(PHASES)}")
    if current == to_phase:
        return False
    if (current, to_phase) in ALLOWED_TRANSITIONS:
        return True
    allowed_next = sorted(t for f, t in ALLOWED_TRANSITIONS if f == current)
    raise PhaseError(
        f"cannot move the ledger from {current or NOT_STARTED} to {to_phase}; "
        f"from {current or NOT_STARTED} it may only move to: {', '.join(allowed_next) or 'nothing (final phase)'}"
    )


def refusal(state: PhaseState, allowed: set[str | None], action: str) -> str | None:
    """The message for refusing ``action`` in ``state``, or None when it may run."""
    if state.phase in allowed:
        return None
    unknown = {p for p in allowed if p is not None and p not in PHASES}
    if unknown:
        raise ValueError(f"unknown phase(s) {sorted(unknown)} in the allowed set for {action}")
    named = [p for p in PHASES if p in allowed]
    wanted = ("no phase yet (a fresh ledger)" if None in allowed else "") + (
        (" or " if None in allowed and named else "") + "phase " + " or ".join(named) if named else ""
    )
    message = f"{action} needs {wanted}; {state.describe()}."
    earliest = named[0] if named else None
    before = state.phase is None or (earliest is not None and PHASES.index(state.phase) < PHASES.index(earliest))
    if earliest and before:
        message += f" Run {PRODUCED_BY[earliest]} first."
    elif state.phase is not None:
        message += f" The migration has already moved past that point; {action} must not run again now."
    return message


def ensure_ledger(conn: psycopg.Connection, control_schema: str) -> None:
    """Create the control schema and its tables if missing; safe to call from parallel tasks."""
    with conn.transaction():
        # Two first runs racing on CREATE ... IF NOT EXISTS can still collide; serialise them.
        _run(conn, control_schema, "lock_ledger_setup", {"lock_name": f"{control_schema}.ledger_setup"})
        for name in (
            "create_control_schema",
            "create_phase_transitions",
            "create_allowed_transitions",
            "create_facts",
            "create_status_view",
            "create_fence",
            "seed_fence",
        ):
            _run(conn, control_schema, name)
        pairs = sorted(ALLOWED_TRANSITIONS, key=lambda p: (p[0] or "", p[1]))
        _run(conn, control_schema, "delete_allowed_transitions")
        _run(
            conn,
            control_schema,
            "insert_allowed_transitions",
            {"from_phases": [f or "" for f, _ in pairs], "to_phases": [t for _, t in pairs]},
        )


def ledger_exists(conn: psycopg.Connection, control_schema: str) -> bool:
    return catalog.table_exists(conn, (control_schema, "phase_transitions"))


def current_state(conn: psycopg.Connection, control_schema: str) -> PhaseState:
    """Where the ledger stands; a target without a ledger yet has no phase (read-only)."""
    if not ledger_exists(conn, control_schema):
        return PhaseState(None)
    row = _run(conn, control_schema, "select_current_phase").fetchone()
    return PhaseState(*row) if row else PhaseState(None)


def current_phase(conn: psycopg.Connection, control_schema: str) -> str | None:
    return current_state(conn, control_schema).phase


def require_phase(conn: psycopg.Connection, control_schema: str, allowed: set[str | None], action: str) -> PhaseState:
    """Refuse ``action`` unless the ledger is in one of ``allowed`` (None: no phase yet)."""
    state = current_state(conn, control_schema)
    message = refusal(state, allowed, action)
    if message:
        raise PhaseError(message)
    return state


def advance(
    conn: psycopg.Connection,
    control_schema: str,
    to_phase: str,
    dag_id: str,
    run_id: str,
    details: dict | None = None,
    *,
    epoch: int | None = None,
    through: tuple[str, ...] = (),
) -> bool:
    """Move the ledger to ``to_phase`` (recording the phases ``through`` first, in the same
    transaction). Returns False (and writes nothing) when it is already there.

    The fence row is taken FOR UPDATE: two concurrent advances queue, the second one
    validating against the first one's result, and a move waits for fenced writes in
    flight. With ``epoch`` (what the calling run acts under, ``run_epoch``) the move
    refuses when the ledger has moved since.
    """
    current_epoch(conn, control_schema)  # a ledger older than the fence gets it here
    with conn.transaction():
        moved = Epoch(*_run(conn, control_schema, "select_fence_for_update").fetchone())
        current = current_state(conn, control_schema)
        if epoch is not None and moved.number != epoch:
            raise StaleEpoch(_stale_message(f"moving the ledger to {to_phase}", epoch, moved, current))
        previous = current.phase
        if previous == to_phase:
            return False
        for phase in (*through, to_phase):
            if not check_transition(previous, phase):  # raises on a move the order forbids
                continue
            _run(
                conn,
                control_schema,
                "insert_phase_transition",
                {"phase": phase, "previous_phase": previous, "dag_id": dag_id, "run_id": run_id, "details": Jsonb(details or {})},
            )
            _run(conn, control_schema, "update_fence", {"phase": phase, "claimed_by": None})
            previous = phase
    return True


def current_epoch(conn: psycopg.Connection, control_schema: str) -> Epoch:
    """The epoch a run starts under (creates the ledger when it is missing: a fresh ledger is epoch 0)."""
    if not ledger_exists(conn, control_schema) or not _fence_exists(conn, control_schema):
        ensure_ledger(conn, control_schema)
    return Epoch(*_run(conn, control_schema, "select_fence").fetchone())


def claim(conn: psycopg.Connection, control_schema: str, epoch: int, dag_id: str, run_id: str, reason: str) -> int:
    """Take the fence for the run that acts under ``epoch``: the epoch moves on, the phase stays, and every
    other run started before refuses its next write. Recorded in the history as a move to the same phase
    (which ``current_state`` and the time-in-phase gates skip). Returns the new epoch."""
    with conn.transaction():
        now = Epoch(*_run(conn, control_schema, "select_fence_for_update").fetchone())
        state = current_state(conn, control_schema)
        if now.number != epoch:
            raise StaleEpoch(_stale_message(f"{dag_id} taking the fence", epoch, now, state))
        _run(
            conn,
            control_schema,
            "insert_phase_transition",
            {"phase": state.phase, "previous_phase": state.phase, "dag_id": dag_id, "run_id": run_id,
             "details": Jsonb({"claimed_fence": reason})},
        )
        return _run(conn, control_schema, "update_fence",
                    {"phase": state.phase, "claimed_by": f"{dag_id}/{run_id}"}).fetchone()[0]


def run_epoch(conn: psycopg.Connection, control_schema: str, started: int, dag_id: str, run_id: str) -> int:
    """The epoch a run acts under: the one it started under, moved on by the ledger moves the run made
    itself (a rollback repairs after recording rolled_back). Any move by another run leaves it at
    ``started``, so its writes refuse."""
    moves = _run(conn, control_schema, "select_moves_since", {"epoch": started}).fetchall()
    return started + len(moves) if all(tuple(move) == (dag_id, run_id) for move in moves) else started


@contextmanager
def fenced(fence_conn: psycopg.Connection, control_schema: str, epoch: int, action: str,
           write_conn: psycopg.Connection | None = None) -> Iterator[psycopg.Connection]:
    """The one write path: a transaction on ``write_conn`` that commits only under ``epoch``.

    ``fence_conn`` is a connection to the target, where the ledger lives. When the write
    goes to the target too (``write_conn`` None or the same connection), the fence row is
    read FOR SHARE inside the write's own transaction. When it goes to another server (a
    source), the fence transaction on the target is held open around the write's
    transaction, which commits first: a ledger move, waiting FOR UPDATE, cannot slip in
    between the check and that commit. Raises StaleEpoch, with nothing written, when the
    ledger has moved since ``epoch``.
    """
    write_conn = write_conn or fence_conn
    with fence_conn.transaction():
        now = Epoch(*_run(fence_conn, control_schema, "select_fence_for_share").fetchone())
        if now.number != epoch:
            raise StaleEpoch(_stale_message(action, epoch, now, current_state(fence_conn, control_schema)))
        if write_conn is fence_conn:
            yield write_conn
        else:
            with write_conn.transaction():
                yield write_conn


def _stale_message(action: str, epoch: int, now: Epoch, state: PhaseState) -> str:
    return (f"{action} refused: this run started at ledger epoch {epoch}, and the ledger has moved since "
            f"(epoch {now.number}): {state.describe()}. Nothing was written; a run started now acts on "
            f"phase {now.phase or NOT_STARTED}.")


def _fence_exists(conn: psycopg.Connection, control_schema: str) -> bool:
    return catalog.table_exists(conn, (control_schema, "fence"))


def record_fact(conn: psycopg.Connection, control_schema: str, key: str, value, dag_id: str, run_id: str) -> None:
    with conn.transaction():
        _run(conn, control_schema, "upsert_fact", {"key": key, "value": Jsonb(value), "dag_id": dag_id, "run_id": run_id})


def read_fact(conn: psycopg.Connection, control_schema: str, key: str) -> Fact | None:
    if not ledger_exists(conn, control_schema):
        return None
    row = _run(conn, control_schema, "select_fact", {"key": key}).fetchone()
    return Fact(key, *row) if row else None


def status(conn: psycopg.Connection, control_schema: str) -> dict:
    """The status view as a dict (the same row a human reads with one query)."""
    cur = _run(conn, control_schema, "select_status")
    names = [d.name for d in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))
