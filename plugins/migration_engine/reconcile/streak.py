"""The clean streak the cutover and finalize gates read, decided from finished runs alone.

A run counts only when it is complete evidence that the stores were level in the
direction the gate cares about: it ran in that direction, set out to check every
table of the manifest (not a ``tables`` selection), no table task errored, and
every table was recorded clean. The streak is how many such runs come in a row,
newest first; the first finished run that does not count ends it. Runs still in
progress (no outcome recorded yet) are not looked at.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

SHOWN_TABLES = 5


@dataclass(frozen=True)
class RunOutcome:
    """What one finished reconcile run set out to do and how each table ended."""

    run_id: str
    direction: str
    finished_at: datetime
    tables_in_scope: frozenset[str]
    tables_errored: frozenset[str]
    tables_clean: frozenset[str]


@dataclass(frozen=True)
class CleanStreak:
    consecutive_clean_runs: int
    clean_since: datetime | None
    last_run_at: datetime | None
    last_unclean_at: datetime | None
    # Why the newest run that did not count was left out ("" when none).
    last_unclean_reason: str = ""


def _named(tables: Iterable[str]) -> str:
    ordered = sorted(tables)
    shown = ", ".join(ordered[:SHOWN_TABLES])
    return shown + (f" and {len(ordered) - SHOWN_TABLES} more" if len(ordered) > SHOWN_TABLES else "")


def why_not_counted(run: RunOutcome, direction: str, tables: frozenset[str]) -> str:
    """The reason ``run`` does not count toward a streak in ``direction``; "" when it counts."""
    if run.direction != direction:
        return f"run {run.run_id} reconciled {run.direction}, not {direction}"
    left_out = tables - run.tables_in_scope
    if left_out:
        return f"run {run.run_id} was limited to {len(tables) - len(left_out)} of {len(tables)} tables (left out: {_named(left_out)})"
    if run.tables_errored:
        return f"run {run.run_id} had table task(s) that errored: {_named(run.tables_errored)}"
    not_clean = tables - run.tables_clean
    if not_clean:
        return f"run {run.run_id} left drift unrepaired or did not record: {_named(not_clean)}"
    return ""


def clean_streak(runs: Sequence[RunOutcome], direction: str, tables: Iterable[str]) -> CleanStreak:
    """Consecutive counting runs, newest first, over ``runs`` in any order."""
    wanted = frozenset(tables)
    newest_first = sorted(runs, key=lambda r: (r.finished_at, r.run_id), reverse=True)
    counted = 0
    clean_since = None
    for run in newest_first:
        reason = why_not_counted(run, direction, wanted)
        if reason:
            return CleanStreak(counted, clean_since, newest_first[0].finished_at, run.finished_at, reason)
        counted += 1
        clean_since = run.finished_at
    return CleanStreak(counted, clean_since, newest_first[0].finished_at if newest_first else None, None)
