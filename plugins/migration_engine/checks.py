"""Refusals, and the gates' verdicts that raise them.

Every refusal anywhere (a wrong schema, a stale key, an out-of-order phase, a
gate that says no, a bad parameter) raises ``CheckFailed`` with the reason a
person needs. Exactly one place turns it into a task failure without retries:
the retry policy in ``dag_support.default_args``, which every task of every DAG
gets. Any other exception (a connection error, a server restart) keeps its
retries, since it may pass.

The gate verdicts below are pure: they decide from what the caller read (the
ledger's state, the clean streak, which endpoints answered) and the clock the
caller passes, so a unit test pins each one down.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the ledger raises CheckFailed, so it cannot be imported here at run time
    from migration_engine.ledger import PhaseState
    from migration_engine.reconcile.streak import CleanStreak

log = logging.getLogger("migration.gates")


class CheckFailed(RuntimeError):
    """A refusal: retrying cannot change it; the message names the cause and what to do."""


def check_confirmation(given, expected: str, dag_id: str) -> None:
    """The operator must type the exact word; anything else refuses before any database is touched."""
    if given != expected:
        shown = "nothing" if given in (None, "") else repr(str(given)[:40])
        raise CheckFailed(
            f"{dag_id} refused: the confirm parameter must be exactly {expected!r}, got {shown}. "
            f"Trigger again and type {expected} to proceed."
        )


def check_non_negative(name: str, value, *, maximum: float) -> float:
    """Numeric Params: a clear refusal for negative, absurd or non-numeric values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckFailed(f"parameter {name} must be a number, got {value!r}")
    if value < 0 or value > maximum:
        raise CheckFailed(f"parameter {name} must be between 0 and {maximum}, got {value}")
    return value


def hours_in_phase(state: PhaseState, now: datetime) -> float:
    if state.at is None:
        return 0.0
    return (now - state.at).total_seconds() / 3600


def time_in_phase_gate(state: PhaseState, phase: str, min_hours: float, *, wait_left_hours: float,
                       now: datetime | None = None) -> dict | None:
    """The ledger has been in ``phase`` for ``min_hours``: the time in it; None while that is still to
    come and the run may wait for it; refuses when the ledger is elsewhere, or when more time is
    missing than the run may still wait."""
    check_non_negative("min_soak_hours", min_hours, maximum=24 * 365)
    if state.phase != phase:
        raise CheckFailed(f"gate refused: the ledger is in {state.phase or 'no phase'}, not {phase}")
    elapsed = hours_in_phase(state, now or datetime.now(UTC))
    if elapsed >= min_hours:
        return {"phase": phase, "hours": round(elapsed, 3), "required_hours": min_hours}
    reason = (f"{phase} has lasted {elapsed:.2f} h since {state.at:%Y-%m-%d %H:%M:%S %Z}; "
              f"at least {min_hours:g} h are required (min_soak_hours)")
    missing = min_hours - elapsed
    if missing > wait_left_hours:
        raise CheckFailed(f"gate refused: {reason}; {missing:.2f} h more than this run may still wait "
                          f"({max(wait_left_hours, 0):.2f} h left of gate_wait_hours)")
    log.info("waiting: %s; %.2f h to go", reason, missing)
    return None


def clean_streak_gate(streak: CleanStreak, min_clean: int, direction: str, *, wait_left_hours: float) -> dict | None:
    """The last ``min_clean`` finished reconcile runs were complete, all-table, error-free and clean in
    ``direction``: the streak; None while the run may wait for more runs; refuses once it may not."""
    check_non_negative("min_clean_reconciles", min_clean, maximum=10_000)
    if streak.consecutive_clean_runs >= min_clean:
        return {"consecutive_clean_runs": streak.consecutive_clean_runs, "required": min_clean,
                "direction": direction, "last_run_at": streak.last_run_at.isoformat() if streak.last_run_at else None}
    reason = (f"the last {min_clean} reconciliation run(s) must be clean ({direction}, every table, no table task "
              f"errored); only {streak.consecutive_clean_runs} in a row are (last run at {streak.last_run_at or 'never'}; "
              f"the streak ends at {streak.last_unclean_at or 'no run'}"
              f"{': ' + streak.last_unclean_reason if streak.last_unclean_reason else ''})")
    if wait_left_hours <= 0:
        raise CheckFailed(f"gate refused: {reason}; the run may wait no longer (gate_wait_hours)")
    log.info("waiting: %s; %.2f h left to wait", reason, wait_left_hours)
    return None


def reachable_gate(failures: list[str], *, waited_seconds: float, wait_seconds: float) -> bool:
    """True when every endpoint answered; False while the run may wait for the ones that did not;
    refuses, naming them, once it has waited ``wait_seconds``."""
    if not failures:
        return True
    reason = "unreachable: " + "; ".join(failures)
    if waited_seconds >= wait_seconds:
        raise CheckFailed(f"{reason}; waited {wait_seconds:g} s (reachable_wait_seconds). Nothing was changed")
    log.warning("waiting: %s", reason)
    return False


def rollback_window_gate(started: dict, keep_source_until: datetime | None, now: datetime | None = None) -> dict:
    """A rollback from ``finalized`` only within the retention window finalize recorded; from any other
    phase, what the run started under, unchanged."""
    if started["phase"] != "finalized":
        return started
    if keep_source_until is None or keep_source_until <= (now or datetime.now(UTC)):
        raise CheckFailed(f"rollback after finalize is possible only within the retention window; it "
                          f"{'ended at ' + keep_source_until.isoformat() if keep_source_until else 'was never recorded'}. "
                          f"Nothing was changed")
    return {**started, "keep_source_until": keep_source_until.isoformat()}
