"""Hard gates of the manual phases (cutover, rollback, finalize, dual-write).

Each gate returns nothing when it passes and raises ``GateRefused`` with the
reason a person needs when it does not. Gates only read.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from migration_engine.checks import CheckFailed
from migration_engine.endpoints import Endpoint, EndpointError, redact
from migration_engine.ledger import PhaseState


class GateRefused(CheckFailed):
    """A gate said no; the message is the reason a person needs."""


def check_confirmation(given, expected: str, dag_id: str) -> None:
    """The operator must type the exact word; anything else refuses before any database is touched."""
    if given != expected:
        shown = "nothing" if given in (None, "") else repr(str(given)[:40])
        raise GateRefused(
            f"{dag_id} refused: the confirm parameter must be exactly {expected!r}, got {shown}. "
            f"Trigger again and type {expected} to proceed."
        )


def check_non_negative(name: str, value, *, maximum: float) -> float:
    """Numeric Params: a clear refusal for negative, absurd or non-numeric values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GateRefused(f"parameter {name} must be a number, got {value!r}")
    if value < 0 or value > maximum:
        raise GateRefused(f"parameter {name} must be between 0 and {maximum}, got {value}")
    return value


def hours_in_phase(state: PhaseState, now: datetime | None = None) -> float:
    if state.at is None:
        return 0.0
    now = now or datetime.now(UTC)
    return (now - state.at).total_seconds() / 3600


def check_time_in_phase(state: PhaseState, phase: str, min_hours: float, now: datetime | None = None) -> float:
    """The ledger must have been in ``phase`` for at least ``min_hours``."""
    if state.phase != phase:
        raise GateRefused(f"the ledger is in {state.phase or 'no phase'}, not {phase}")
    elapsed = hours_in_phase(state, now)
    if elapsed < min_hours:
        raise GateRefused(
            f"{phase} has lasted {elapsed:.2f} h since {state.at:%Y-%m-%d %H:%M:%S %Z}; "
            f"at least {min_hours:g} h are required (min_soak_hours)"
        )
    return elapsed


def check_reachable(endpoints: list[Endpoint], application_name: str) -> list[dict]:
    """Every endpoint answers a query; the refusal names each one that does not."""
    failures, reached = [], []
    for endpoint in endpoints:
        try:
            with endpoint.connect(application_name=application_name, autocommit=True) as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
            reached.append({"endpoint": endpoint.name, "where": endpoint.describe(), "server_version": version})
        except (EndpointError, psycopg.Error) as exc:
            failures.append(str(exc) if isinstance(exc, EndpointError) else f"{endpoint.name}: {redact(str(exc), endpoint.password)}")
    if failures:
        raise GateRefused("unreachable: " + "; ".join(failures))
    return reached
