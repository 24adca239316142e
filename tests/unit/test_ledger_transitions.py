"""The ledger's order, checked without a database (the SQL side is in
tests/integration/test_preflight_schema.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from migration_engine.ledger import ALLOWED_TRANSITIONS, PHASES, PhaseError, PhaseState, check_transition, refusal

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "current, to_phase",
    [
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
        ("finalized", "rolled_back"),
    ],
)
def test_the_runbook_order_is_allowed(current, to_phase):
    assert check_transition(current, to_phase) is True


@pytest.mark.parametrize("phase", PHASES)
def test_re_running_the_current_phase_is_a_no_op(phase):
    assert check_transition(phase, phase) is False


@pytest.mark.parametrize(
    "current, to_phase",
    [
        (None, "schema_applied"),
        ("preflight_passed", "backfilled"),
        ("schema_applied", "preflight_passed"),
        ("soak", "rolled_back"),
        ("rolled_back", "cut_over"),
        ("finalized", "soak"),
    ],
)
def test_skipping_or_going_back_is_refused(current, to_phase):
    with pytest.raises(PhaseError, match=f"cannot move the ledger from {current or 'not_started'} to {to_phase}"):
        check_transition(current, to_phase)


def test_unknown_phase_is_refused():
    with pytest.raises(PhaseError, match="unknown phase 'done'"):
        check_transition("soak", "done")


def test_every_transition_uses_known_phases():
    for before, after in ALLOWED_TRANSITIONS:
        assert before is None or before in PHASES
        assert after in PHASES


def test_backfill_before_schema_baseline_names_what_to_run():
    # The backfill DAG will call require_phase with this set; it does not exist yet.
    state = PhaseState("preflight_passed", AT, "preflight", "manual__2026-03-01")
    message = refusal(state, {"schema_applied", "backfilled"}, "backfill")
    assert message == (
        "backfill needs phase schema_applied or backfilled; the ledger says preflight_passed since "
        "2026-03-01 12:00:00 UTC (dag preflight, run manual__2026-03-01). Run schema_baseline first."
    )


def test_an_empty_ledger_points_at_preflight():
    assert refusal(PhaseState(None), {"preflight_passed", "schema_applied"}, "schema_baseline") == (
        "schema_baseline needs phase preflight_passed or schema_applied; the ledger is empty "
        "(no phase recorded yet). Run preflight first."
    )


def test_a_phase_already_passed_is_refused_without_sending_back():
    message = refusal(PhaseState("backfilled", AT, "backfill", "r9"), {None, "preflight_passed"}, "preflight")
    assert "already moved past" in message and "Run " not in message


def test_allowed_phase_is_not_refused():
    assert refusal(PhaseState("schema_applied", AT, "schema_baseline", "r2"), {"schema_applied"}, "backfill") is None
