"""The manual phases' gates decide from what was read and the clock: pass (a result), wait (None or
False) or refuse (CheckFailed naming why). A changed verdict fails here, not only in an Airflow run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from migration_engine.checks import (
    CheckFailed,
    clean_streak_gate,
    reachable_gate,
    rollback_window_gate,
    time_in_phase_gate,
)
from migration_engine.ledger import PhaseState
from migration_engine.reconcile.streak import CleanStreak

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def soaking_for(hours: float) -> PhaseState:
    return PhaseState("soak", NOW - timedelta(hours=hours))


def test_time_in_phase_passes_once_long_enough():
    assert time_in_phase_gate(soaking_for(25), "soak", 24, wait_left_hours=0, now=NOW) == {
        "phase": "soak", "hours": 25.0, "required_hours": 24}


def test_time_in_phase_waits_while_the_run_may_still_wait():
    assert time_in_phase_gate(soaking_for(20), "soak", 24, wait_left_hours=6, now=NOW) is None


def test_time_in_phase_refuses_when_more_is_missing_than_the_run_may_wait():
    with pytest.raises(CheckFailed) as refused:
        time_in_phase_gate(soaking_for(20), "soak", 24, wait_left_hours=3, now=NOW)
    assert str(refused.value).startswith("gate refused: soak has lasted 20.00 h since 2026-02-28 16:00:00 UTC; "
                                         "at least 24 h are required (min_soak_hours); 4.00 h more than this run may "
                                         "still wait (3.00 h left of gate_wait_hours)")


def test_time_in_phase_refuses_at_once_in_another_phase():
    with pytest.raises(CheckFailed, match=r"^gate refused: the ledger is in cut_over, not soak$"):
        time_in_phase_gate(PhaseState("cut_over", NOW), "soak", 0, wait_left_hours=72, now=NOW)
    with pytest.raises(CheckFailed, match="the ledger is in no phase, not soak"):
        time_in_phase_gate(PhaseState(None), "soak", 0, wait_left_hours=72, now=NOW)


@pytest.mark.parametrize("hours", [-1, 24 * 366, "24", True])
def test_time_in_phase_refuses_an_absurd_minimum(hours):
    with pytest.raises(CheckFailed, match="parameter min_soak_hours must be"):
        time_in_phase_gate(soaking_for(1), "soak", hours, wait_left_hours=1, now=NOW)


def streak(runs: int, reason: str = "") -> CleanStreak:
    return CleanStreak(runs, NOW if runs else None, NOW, NOW if reason else None, reason)


def test_clean_streak_passes_at_the_required_count():
    assert clean_streak_gate(streak(3), 3, "source_to_target", wait_left_hours=0) == {
        "consecutive_clean_runs": 3, "required": 3, "direction": "source_to_target", "last_run_at": NOW.isoformat()}


def test_clean_streak_waits_for_more_runs_while_it_may():
    assert clean_streak_gate(streak(1), 3, "source_to_target", wait_left_hours=0.5) is None


def test_clean_streak_refuses_naming_the_run_that_ended_it():
    with pytest.raises(CheckFailed) as refused:
        clean_streak_gate(streak(0, "run r7 reconciled target_to_source, not source_to_target"), 1, "source_to_target",
                          wait_left_hours=0)
    message = str(refused.value)
    assert message.startswith("gate refused: the last 1 reconciliation run(s) must be clean (source_to_target, every "
                              "table, no table task errored); only 0 in a row are")
    assert message.endswith(": run r7 reconciled target_to_source, not source_to_target); "
                            "the run may wait no longer (gate_wait_hours)")


def test_clean_streak_of_zero_required_passes_with_no_run():
    assert clean_streak_gate(CleanStreak(0, None, None, None), 0, "target_to_source", wait_left_hours=0)["required"] == 0


def test_reachable_when_nothing_failed_waits_then_refuses_naming_what_did_not_answer():
    assert reachable_gate([], waited_seconds=999, wait_seconds=0) is True
    assert reachable_gate(["target (pooler): refused"], waited_seconds=10, wait_seconds=120) is False
    with pytest.raises(CheckFailed, match=r"^unreachable: target \(pooler\): refused; waited 120 s "
                                          r"\(reachable_wait_seconds\)\. Nothing was changed$"):
        reachable_gate(["target (pooler): refused"], waited_seconds=120, wait_seconds=120)


def test_rollback_after_finalize_only_within_the_retention_window():
    started = {"phase": "finalized", "epoch": 9}
    assert rollback_window_gate(started, NOW + timedelta(days=1), now=NOW) == {
        **started, "keep_source_until": (NOW + timedelta(days=1)).isoformat()}
    with pytest.raises(CheckFailed, match="retention window; it ended at 2026-03-01T12:00:00"):
        rollback_window_gate(started, NOW, now=NOW)
    with pytest.raises(CheckFailed, match="retention window; it was never recorded. Nothing was changed"):
        rollback_window_gate(started, None, now=NOW)


def test_rollback_from_any_other_phase_is_not_held_to_a_window():
    started = {"phase": "cut_over", "epoch": 4}
    assert rollback_window_gate(started, None, now=NOW) is started
