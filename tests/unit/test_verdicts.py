"""How reconcile, catch-up and the manual phases' passes end, decided from their tables' summaries, and
whether a failed flip may have committed: the pure verdicts the DAGs' judge tasks act on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from migration_engine import read_path
from migration_engine.checks import CheckFailed
from migration_engine.ledger import Fact
from migration_engine.manifest import DEFAULT_MANIFEST, load_manifest
from migration_engine.tasks import catch_up, cutover
from migration_engine.tasks.reconcile import errored_tables, run_verdict, starts_soak
from migration_engine.tasks.shared import FLIP_FACT, SETTLE_PASSES, pass_totals, pass_verdict, settle

MANIFEST = load_manifest(DEFAULT_MANIFEST)
ALL = [t.qualified for t in MANIFEST.tables]
PARAMS = {"dry_run": False, "repair_cap": 1000, "max_unrepaired_rows": 0}


def summary(table: str, *, drifted=0, repaired=0, in_flight=0, unrepaired=0, held_back=0, refused_late=0,
            cap_exceeded=False, refused_by=None, **extra) -> dict:
    return {"table": table, "checked_rows": 10, "drifted": drifted, "repaired": repaired, "in_flight": in_flight,
            "unrepaired": unrepaired, "held_back": held_back, "refused_late": refused_late, "cap_exceeded": cap_exceeded,
            "refused_by": refused_by or {}, "clean": drifted == repaired and not unrepaired, "unexplained_keys": [],
            **extra}


def test_a_table_with_no_summary_errored_and_the_run_refuses_naming_it():
    summaries = [summary("wallet.users")]
    errored = errored_tables(["wallet.users", "wallet.claims"], summaries)
    assert errored == ["wallet.claims"]
    with pytest.raises(CheckFailed, match=r"^1 table task\(s\) errored: \['wallet.claims'\]; their logs say why"):
        run_verdict(summaries, errored, PARAMS)


def test_tables_never_listed_refuse():
    with pytest.raises(CheckFailed, match="never listed"):
        errored_tables(None, [])


def test_a_clean_run_returns_its_totals():
    verdict = run_verdict([summary("wallet.users", drifted=2, repaired=2), summary("wallet.claims")], [], PARAMS)
    assert verdict == {"checked_rows": 20, "drifted": 2, "repaired": 2, "in_flight": 0, "unrepaired": 0,
                       "clean": True, "tables": 2}


def test_the_repair_cap_refuses_before_the_unrepaired_threshold():
    summaries = [summary("wallet.users", drifted=5000, unrepaired=5000, cap_exceeded=True)]
    with pytest.raises(CheckFailed, match=r"^repair cap of 1000 rows exceeded in \['wallet.users'\]"):
        run_verdict(summaries, [], PARAMS)


def test_rows_in_flight_and_held_back_do_not_count_as_unrepaired():
    summaries = [summary("wallet.users", drifted=3, unrepaired=3, in_flight=2, held_back=1)]
    assert run_verdict(summaries, [], PARAMS)["clean"] is False
    with pytest.raises(CheckFailed, match=r"^1 drifted row\(s\) left unrepaired \(max 0\) in \['issuer.users'\]; "
                                          r"refused by: \{'issuer.users': \{'foreign key': 1\}\}$"):
        run_verdict([summary("issuer.users", drifted=1, unrepaired=1, refused_by={"foreign key": 1})], [], PARAMS)
    assert run_verdict([summary("issuer.users", drifted=1, unrepaired=1)], [], {**PARAMS, "max_unrepaired_rows": 1})


def test_a_dry_run_is_judged_on_its_findings_alone():
    verdict = run_verdict([summary("wallet.users", drifted=5000, unrepaired=5000, cap_exceeded=True)], [],
                          {**PARAMS, "dry_run": True})
    assert verdict["dry_run"] is True and verdict["clean"] is False


@pytest.mark.parametrize(("phase", "tables", "clean", "starts"), [
    ("dual_write", ALL, True, True), ("rolled_back", ALL, True, True), ("soak", ALL, True, False),
    ("dual_write", ALL[:3], True, False), ("dual_write", ALL, False, False),
])
def test_only_a_clean_all_table_run_with_dual_write_on_starts_the_soak(phase, tables, clean, starts):
    assert starts_soak(phase, {"clean": clean}, tables, ALL) is starts


def test_settling_reruns_refused_children_with_their_parents_parents_first():
    calls = []

    def again(names):
        calls.append(names)
        return {name: summary(name) for name in names}

    summaries = [summary("issuer.verification_logs", drifted=1, unrepaired=1), summary("wallet.users")]
    settled = settle(summaries, again, MANIFEST.tables)
    assert calls == [["issuer.tenants", "issuer.issuers", "issuer.templates", "issuer.credentials",
                      "issuer.verification_logs"]]
    assert all(s["clean"] for s in settled)


def test_settling_leaves_capped_tables_alone_and_stops_after_its_passes():
    calls = []

    def again(names):
        calls.append(names)
        return {name: summary(name, drifted=1, unrepaired=1) for name in names}

    assert settle([summary("wallet.users", drifted=9, unrepaired=9, cap_exceeded=True)], again, MANIFEST.tables)
    assert calls == []
    settle([summary("wallet.users", drifted=1, unrepaired=1)], again, MANIFEST.tables)
    assert calls == [["wallet.users"]] * SETTLE_PASSES


def test_a_manual_pass_refuses_above_the_cap_even_on_a_dry_run_and_above_the_threshold_unless_dry():
    capped = [summary("wallet.users", drifted=9, unrepaired=9, cap_exceeded=True)]
    with pytest.raises(CheckFailed, match=r"^reconciliation refused to repair: drift above the cap of 5 rows in \['wallet.users'\]$"):
        pass_verdict(capped, pass_totals(capped), cap=5, max_unrepaired=0, dry_run=True)
    left = [summary("wallet.users", drifted=2, unrepaired=2, refused_by={"foreign key": 2})]
    with pytest.raises(CheckFailed, match=r"^2 drifted row\(s\) remain unrepaired \(max 0\) in \['wallet.users'\]; "
                                          r"refused by: \{'wallet.users': \{'foreign key': 2\}\}$"):
        pass_verdict(left, pass_totals(left), cap=5, max_unrepaired=0, dry_run=False)
    assert pass_verdict(left, pass_totals(left), cap=5, max_unrepaired=0, dry_run=True)["unrepaired"] == 2


def caught_up(table: str, converged: bool = True, **counts) -> dict:
    return summary(table, repaired_all_passes=0, unexplained=0, converged=converged, **counts)


def test_catch_up_refuses_naming_unexplained_drift_first_then_rows_left_behind():
    held = caught_up("wallet.users", held_back=1, unexplained_keys=["7"])
    with pytest.raises(CheckFailed, match=r"history does not explain .*\{'wallet.users': \['7'\]\}"):
        catch_up.verdict([held, caught_up("wallet.claims", drifted=1, unrepaired=1)])
    with pytest.raises(CheckFailed, match=r"^rows left unrepaired \(cap exceeded or refused\): \{'wallet.claims': 1\}"):
        catch_up.verdict([caught_up("wallet.claims", drifted=1, unrepaired=1)])


def test_catch_up_children_waiting_for_newer_parents_are_not_left_behind():
    waiting = caught_up("issuer.users", drifted=2, unrepaired=2, refused_late=2, converged=False)
    assert catch_up.verdict([waiting]) == {"checked_rows": 10, "repaired_all_passes": 0, "in_flight": 0,
                                                 "unexplained": 0, "tables": 1, "converged": False}


def flip(dag_id: str, run_id: str) -> Fact:
    return Fact(FLIP_FACT, {"side": "target"}, datetime(2026, 3, 1, tzinfo=UTC), dag_id, run_id)


def test_a_failed_flip_may_have_committed_only_when_this_run_started_it():
    assert cutover.flip_started_in_run(flip("cutover", "r2"), "cutover", "r2", dry_run=False)
    assert not cutover.flip_started_in_run(flip("cutover", "r1"), "cutover", "r2", dry_run=False)
    assert not cutover.flip_started_in_run(None, "cutover", "r2", dry_run=False)
    assert not cutover.flip_started_in_run(flip("cutover", "r2"), "cutover", "r2", dry_run=True)


def test_the_read_path_plan_sets_every_service_to_one_side_after_making_sure_the_flags_exist():
    plan = read_path.read_path_statements(MANIFEST, "target", changed_by="cutover/r2")
    assert [s.name for s in plan] == ["cutover/create_read_path_table.sql", "cutover/seed_read_path.sql",
                                      "cutover/set_read_path.sql"]
    assert plan[-1].params == {"side": "target", "services": ["wallet", "issuer", "recruiter"], "changed_by": "cutover/r2"}
    assert read_path.read_path_statements(MANIFEST, "source", "rollback/r3", services=["issuer"])[-1].params["services"] == ["issuer"]
    with pytest.raises(ValueError, match="read path side must be one of"):
        read_path.read_path_statements(MANIFEST, "primary", "cutover/r2")
    with pytest.raises(ValueError, match=r"unknown service\(s\) \['billing'\]"):
        read_path.read_path_statements(MANIFEST, "target", "cutover/r2", services=["billing"])
