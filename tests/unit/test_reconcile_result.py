"""A reconcile result's verdicts: what counts as clean, held back, in flight, and what settling can still fix."""

from __future__ import annotations

from migration_engine.reconcile.diff import DriftKind
from migration_engine.reconcile.engine import Direction, Finding, ReconcileResult
from migration_engine.tasks.shared import left_unrepaired


def result(*findings: Finding) -> ReconcileResult:
    return ReconcileResult("wallet.users", "run", Direction.SOURCE_TO_TARGET, dry_run=False, findings=list(findings))


def test_unexplained_rows_held_back_leave_the_run_unclean_but_give_settling_nothing_to_redo():
    outcome = result(
        Finding(1, DriftKind.VALUES_DIFFER, 1, 2, repaired=True),
        Finding(2, DriftKind.MISSING_IN_TARGET, 3, None, in_flight=True),
        Finding(3, DriftKind.VALUES_DIFFER, 4, 5, unexplained=True),
    )
    summary = outcome.summary()
    assert not outcome.clean
    assert (summary["unexplained"], summary["held_back"], summary["in_flight"]) == (1, 1, 1)
    assert summary["unexplained_keys"] == ["3"] and summary["in_flight_keys"] == ["2"]
    assert left_unrepaired(summary) == 0


def test_an_unexplained_row_repaired_on_request_is_reported_and_clean():
    outcome = result(Finding(7, DriftKind.MISSING_IN_TARGET, 1, None, repaired=True, unexplained=True))
    summary = outcome.summary()
    assert outcome.clean and summary["unexplained"] == 1 and summary["held_back"] == 0


def test_a_refused_repair_is_left_for_settling():
    summary = result(Finding(9, DriftKind.MISSING_IN_TARGET, 1, None)).summary()
    assert not summary["clean"] and left_unrepaired(summary) == 1


def test_listed_keys_are_bounded():
    many = result(*(Finding(k, DriftKind.MISSING_IN_TARGET, 1, None, in_flight=True) for k in range(500))).summary()
    assert len(many["in_flight_keys"]) == 100 and many["in_flight"] == 500


def test_a_refused_child_is_settled_again_even_when_written_late_and_then_tolerated_as_late():
    summary = result(Finding(4, DriftKind.MISSING_IN_TARGET, 1, None, refused=True, refused_late=True)).summary()
    assert not summary["clean"]
    assert left_unrepaired(summary) == 1 and summary["refused_late"] == 1
