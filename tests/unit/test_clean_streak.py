"""The clean-streak verdict the cutover and finalize gates read, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from migration_engine.reconcile.streak import RunOutcome, clean_streak, why_not_counted

TABLES = frozenset({"wallet.users", "wallet.activities", "issuer.tenants"})
FORWARD = "source_to_target"
BACKWARD = "target_to_source"
START = datetime(2026, 1, 1, tzinfo=UTC)


def run(hour: int, *, direction: str = FORWARD, scope=TABLES, errored=(), clean=TABLES) -> RunOutcome:
    return RunOutcome(f"run-{hour}", direction, START + timedelta(hours=hour), frozenset(scope),
                      frozenset(errored), frozenset(clean))


def test_complete_clean_runs_in_the_direction_count_in_any_input_order():
    runs = [run(3), run(1), run(2)]
    streak = clean_streak(runs, FORWARD, TABLES)
    assert streak.consecutive_clean_runs == 3
    assert (streak.clean_since, streak.last_run_at, streak.last_unclean_at) == (run(1).finished_at, run(3).finished_at, None)
    assert streak.last_unclean_reason == ""


def test_no_runs_is_no_streak():
    streak = clean_streak([], FORWARD, TABLES)
    assert (streak.consecutive_clean_runs, streak.last_run_at, streak.clean_since) == (0, None, None)


def test_a_run_limited_by_the_tables_param_does_not_count_and_ends_the_streak():
    limited = run(3, scope={"wallet.users"}, clean={"wallet.users"})
    streak = clean_streak([run(1), run(2), limited], FORWARD, TABLES)
    assert streak.consecutive_clean_runs == 0
    assert streak.last_unclean_at == limited.finished_at
    assert "limited to 1 of 3 tables" in streak.last_unclean_reason
    assert "issuer.tenants" in streak.last_unclean_reason


def test_a_run_in_the_other_direction_does_not_count():
    streak = clean_streak([run(1), run(2, direction=BACKWARD), run(3)], FORWARD, TABLES)
    assert streak.consecutive_clean_runs == 1
    assert streak.last_unclean_reason == f"run run-2 reconciled {BACKWARD}, not {FORWARD}"
    assert clean_streak([run(1, direction=BACKWARD)], BACKWARD, TABLES).consecutive_clean_runs == 1


def test_a_run_whose_table_task_errored_does_not_count_even_if_the_rest_was_clean():
    errored = run(2, errored={"wallet.activities"}, clean=TABLES - {"wallet.activities"})
    streak = clean_streak([run(1), errored], FORWARD, TABLES)
    assert streak.consecutive_clean_runs == 0
    assert "errored: wallet.activities" in streak.last_unclean_reason


def test_a_run_that_left_drift_or_recorded_no_row_for_a_table_does_not_count():
    assert "issuer.tenants" in why_not_counted(run(1, clean=TABLES - {"issuer.tenants"}), FORWARD, TABLES)
    streak = clean_streak([run(1), run(2, clean=set()), run(3), run(4)], FORWARD, TABLES)
    assert (streak.consecutive_clean_runs, streak.clean_since) == (2, run(3).finished_at)


def test_a_table_added_to_the_manifest_after_a_run_makes_that_run_incomplete():
    assert "limited to 3 of 4 tables" in why_not_counted(run(1), FORWARD, TABLES | {"recruiter.users"})
    assert why_not_counted(run(1), FORWARD, TABLES) == ""


def test_long_table_lists_are_shortened_in_the_reason():
    many = frozenset(f"s.t{i:02d}" for i in range(12))
    reason = why_not_counted(run(1, scope=set(), clean=set()), FORWARD, many)
    assert "s.t00, s.t01, s.t02, s.t03, s.t04 and 7 more" in reason
