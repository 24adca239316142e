"""The phase ledger: a small control schema in the target that records which
phase of the runbook the migration is in, who moved it there and when.

Every phase DAG calls ``require_phase`` first and ``advance`` last, so the
runbook's order is enforced by the software. Phases, in order::

    preflight_passed -> schema_applied -> backfilled -> verified
        -> dual_write -> soak -> cut_over -> finalized
    cut_over -> rolled_back -> dual_write | soak

After a rollback the read path is back on the source with dual-write still on,
so the migration resumes the dual-write window (``dual_write``: reconcile until
clean) or, when reconciles are already clean, a new ``soak``; it never jumps
straight to ``cut_over`` again. Re-running the phase the ledger is already in
is allowed and writes nothing. ``facts`` holds what phases prove on the way
(schema fingerprints, backups, summaries) for later phases to check against.

One query tells a human where the migration stands::

    SELECT current_phase, since, by_dag, by_run, may_advance_to, history
    FROM migration_control.status;
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from migration_engine import sqlfiles
from migration_engine.checks import CheckFailed

PHASES = (
    "preflight_passed",
    "schema_applied",
    "backfilled",
    "verified",
    "dual_write",
    "soak",
    "cut_over",
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
        ("cut_over", "finalized"),
        ("cut_over", "rolled_back"),
        ("rolled_back", "dual_write"),
        ("rolled_back", "soak"),
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
    "rolled_back": "rollback",
    "finalized": "finalize",
}

NOT_STARTED = "not_started"


class PhaseError(CheckFailed):
    """Work asked for out of the runbook's order; the message says what to run instead."""


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
        "status": (control_schema, "status"),
    }


def _run(conn: psycopg.Connection, control_schema: str, name: str, params: dict | None = None) -> psycopg.Cursor:
    sql_file = sqlfiles.load("ledger", name)
    identifiers = {k: v for k, v in _objects(control_schema).items() if k in sql_file.placeholders}
    return conn.execute(sql_file.render(**identifiers), params)


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
    row = _run(conn, control_schema, "select_ledger_exists", {"schema": control_schema, "table": "phase_transitions"}).fetchone()
    return bool(row[0])


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
) -> bool:
    """Move the ledger to ``to_phase``. Returns False (and writes nothing) when it is
    already there. The table lock makes two concurrent advances queue, so the second
    one validates against the first one's result."""
    with conn.transaction():
        _run(conn, control_schema, "lock_phase_transitions")
        current = current_state(conn, control_schema).phase
        if not check_transition(current, to_phase):
            return False
        _run(
            conn,
            control_schema,
            "insert_phase_transition",
            {"phase": to_phase, "previous_phase": current, "dag_id": dag_id, "run_id": run_id, "details": Jsonb(details or {})},
        )
    return True


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
