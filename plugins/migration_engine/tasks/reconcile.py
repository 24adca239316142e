"""Steps of the reconcile DAG as plain functions over Airflow connections."""

from __future__ import annotations

import logging

from migration_engine import alerts, ledger
from migration_engine import dag_support as ds
from migration_engine.checks import CheckFailed
from migration_engine.reconcile import drift_ledger
from migration_engine.reconcile.engine import ReconcileResult, TableJob, direction_for_phase, reconcile_tables
from migration_engine.tasks import shared

log = logging.getLogger("migration.reconcile")


def phase_to_reconcile(dag_id: str) -> dict | None:
    """The ledger phase and epoch the run starts under, when the phase is one to reconcile in; None (the run
    is skipped) otherwise. Every table task and the settling pass write fenced by that epoch."""
    conns = ds.Connections(dag_id)
    schema = ds.manifest().control_schema
    with conns.target() as conn:
        started = ledger.current_epoch(conn, schema) if ledger.ledger_exists(conn, schema) else ledger.Epoch(0, None)
    phase = started.phase
    if started.claimed_by:
        raise CheckFailed(f"{started.claimed_by} holds the ledger's fence (ledger epoch {started.number}, phase {phase}): a "
                          f"transition is under way and may change which side the apps write, so this run writes nothing. "
                          f"It ends when that run moves the ledger; if that run failed, re-run it or roll back")
    if direction_for_phase(phase or "") is None:
        log.info("ledger phase is %s: reconciliation runs only in dual_write, soak, cut_over, finalized and rolled_back; skipped%s",
                 phase, " (before dual-write, the catch_up DAG brings the apps' writes over)"
                 if phase in ("backfilled", "verified") else "")
        return None
    return {"phase": phase, "epoch": started.number}


def apps_health(dag_id: str, phase: str, max_increase: float | None) -> dict | None:
    """The budgets the run's scans keep to, measured on the apps' primary in this phase before any scan."""
    return shared.primary_budgets(dag_id, direction_for_phase(phase), max_increase)


def reconcile_group(dag_id: str, context, group: dict, phase: str, params: dict, *, epoch: int,
                    budgets: dict | None = None) -> list[dict]:
    """The group's tables together (one grace period for all); one that errors does not keep the others
    from their repairs, and the task then fails naming it (the judge counts the whole group as errored).
    Once the ledger has moved since the run started, no table of it may write: the task refuses at once."""
    outcomes = reconcile_some(dag_id, context, group["tables"], phase, params, epoch=epoch, budgets=budgets)
    errored = [table for table, outcome in outcomes.items() if isinstance(outcome, Exception)]
    for table in errored:
        log.error("%s: reconciliation errored", table, exc_info=outcomes[table])
    if errored:
        # Not a refusal: what errored (a lost connection, a restarted server) may pass, so the task retries.
        raise RuntimeError(f"reconciliation errored on {errored} (their logs above say why); the other tables of "
                           f"this task were reconciled")
    return [outcome.summary() for outcome in outcomes.values()]


def reconcile_some(dag_id: str, context, tables: list[str], phase: str, params: dict, *,
                   epoch: int, budgets: dict | None = None) -> dict[str, ReconcileResult | Exception]:
    """Table -> its result, or the exception its reconciliation raised; refuses once the ledger has moved.
    With ``budgets`` (``shared.primary_budgets``) each table's scans are paced by the apps' primary's health."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    direction = direction_for_phase(phase)
    jobs = [TableJob(m.table(name), conns.source_endpoint(m.table(name).service),
                     budget=shared.budget_for(budgets, m.table(name), direction)) for name in tables]
    results = reconcile_tables(
        jobs, conns.target_endpoint, run_id=context["run_id"], direction=direction,
        control_schema=m.control_schema, cap=params["repair_cap"], grace_seconds=params["grace_seconds"],
        dry_run=params["dry_run"], epoch=epoch,
    )
    for name, result in zip(tables, results, strict=True):
        if isinstance(result, ReconcileResult) and result.cap_exceeded:
            alerts.notify_drift(context, name, result.drifted, "repair cap exceeded, nothing repaired")
    return dict(zip(tables, results, strict=True))


SUMMED = ("checked_rows", "drifted", "repaired", "in_flight", "unrepaired")


def errored_tables(tables: list[str] | None, summaries: list[dict]) -> list[str]:
    """The run's tables that have no summary: their table task errored. Refuses when the tables were
    never listed."""
    if tables is None:
        raise CheckFailed("the tables to reconcile were never listed (list_tables failed): nothing to judge")
    reported = {s["table"] for s in summaries}
    return [t for t in tables if t not in reported]


def run_totals(summaries: list[dict]) -> dict:
    return {key: sum(s[key] for s in summaries) for key in SUMMED}


def run_verdict(summaries: list[dict], errored: list[str], params: dict) -> dict:
    """How a reconcile run ends, from its tables' summaries once settled: its totals and whether it was
    clean; refuses when a table task errored, a repair cap was exceeded or more rows than
    ``max_unrepaired_rows`` are left (rows in flight and unexplained rows held back aside). A dry run
    repaired nothing, so it is judged on its findings alone."""
    if errored:
        raise CheckFailed(f"{len(errored)} table task(s) errored: {errored}; their logs say why. This run does not count "
                          f"toward the clean streak the cutover and finalize gates require")
    totals = run_totals(summaries)
    if params["dry_run"]:
        return {**totals, "clean": totals["drifted"] == 0, "tables": len(summaries), "dry_run": True}
    capped = [s["table"] for s in summaries if s["cap_exceeded"]]
    if capped:
        raise CheckFailed(f"repair cap of {params['repair_cap']} rows exceeded in {capped}: nothing repaired there; dual-write looks broken")
    unrepaired = sum(shared.left_unrepaired(s) for s in summaries)
    if unrepaired > params["max_unrepaired_rows"]:
        dirty = {s["table"]: s.get("refused_by") or {} for s in summaries if shared.left_unrepaired(s) > 0}
        raise CheckFailed(f"{unrepaired} drifted row(s) left unrepaired (max {params['max_unrepaired_rows']}) in {list(dirty)}; "
                          f"refused by: {dirty}")
    return {**totals, "clean": all(s["clean"] for s in summaries), "tables": len(summaries)}


def starts_soak(phase: str, verdict: dict, tables: list[str], all_tables: list[str]) -> bool:
    """The first clean all-table run with dual-write on (after a rollback too) starts the soak."""
    return (phase in ("dual_write", "rolled_back") and not verdict.get("dry_run") and verdict["clean"]
            and set(tables) == set(all_tables))


def judge(dag_id: str, context, summaries: list[dict], phase: str, tables: list[str] | None, params: dict, *,
          epoch: int, budgets: dict | None = None) -> dict:
    """Record how the run ended, then fail it above the threshold or when a table task errored;
    the first clean run of the dual-write window starts the soak.

    Runs once every table task is done, failed or not: a table with no summary errored.
    """
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    run_id = context["run_id"]
    errored = errored_tables(tables, summaries)
    if not params["dry_run"]:
        summaries = shared.settle(summaries, lambda names: shared.summaries_of(
            reconcile_some(dag_id, context, names, phase, params, epoch=epoch, budgets=budgets)), m.tables)
        with conns.target() as conn, \
             ledger.fenced(conn, m.control_schema, epoch, "recording the reconcile run"):
            drift_ledger.record_outcome(conn, m.control_schema, run_id, direction_for_phase(phase).value,
                                        tables, errored)
    totals = run_totals(summaries)
    log.info("reconcile run %s (%s): %s over %d tables", run_id, phase, totals, len(summaries))
    verdict = run_verdict(summaries, errored, params)
    if params["dry_run"]:
        log.info("dry run: findings reported above, nothing repaired or recorded")
    elif starts_soak(phase, verdict, tables, [t.qualified for t in m.tables]):
        ds.advance_phase(dag_id, run_id, "soak", {"first_clean_reconcile": run_id, **totals})
        log.info("first clean reconciliation with dual-write on: the soak starts now")
    return verdict
