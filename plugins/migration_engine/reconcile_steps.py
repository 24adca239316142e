"""Steps of the reconcile DAG as plain functions over Airflow connections."""

from __future__ import annotations

import logging

from migration_engine import alerts, ledger
from migration_engine import dag_support as ds
from migration_engine.checks import CheckFailed, fail_without_retry
from migration_engine.reconcile.engine import direction_for_phase, reconcile_table

log = logging.getLogger("migration.reconcile")


def phase_to_reconcile(dag_id: str) -> str | None:
    """The ledger phase when it is one to reconcile in; None (the run is skipped) otherwise."""
    with ds.target_connection(dag_id) as conn:
        phase = ledger.current_phase(conn, ds.manifest().control_schema)
    if direction_for_phase(phase or "") is None:
        log.info("ledger phase is %s: reconciliation runs only in dual_write, soak and cut_over; skipped", phase)
        return None
    return phase


def tables_to_check(tables: list[str]) -> list[str]:
    m = ds.manifest()
    known = [t.qualified for t in m.tables]
    unknown = [t for t in tables if t not in known]
    if unknown:
        with fail_without_retry():
            raise CheckFailed(f"parameter tables: {unknown!r} not in the manifest {m.file.name}; known tables: {known}")
    return [t for t in known if not tables or t in tables]


def reconcile_one(dag_id: str, context, table_name: str, phase: str, params: dict) -> dict:
    m = ds.manifest()
    table = m.table(table_name)
    result = reconcile_table(
        table, ds.source_endpoint(table.service), ds.target_endpoint(),
        run_id=context["run_id"], direction=direction_for_phase(phase), control_schema=m.control_schema,
        cap=params["repair_cap"], grace_seconds=params["grace_seconds"], dry_run=params["dry_run"],
    )
    summary = result.summary()
    if result.cap_exceeded or summary["unrepaired"] - summary["in_flight"] > 0:
        alerts.notify_drift(context, table.qualified, summary["drifted"],
                            "repair cap exceeded, nothing repaired" if result.cap_exceeded else f"{summary['unrepaired']} unrepaired")
    return summary


def judge(dag_id: str, run_id: str, summaries: list[dict], phase: str, params: dict) -> dict:
    """Fail the run above the threshold; the first clean run of the dual-write window starts the soak."""
    totals = {key: sum(s[key] for s in summaries) for key in ("checked_rows", "drifted", "repaired", "in_flight", "unrepaired")}
    unrepaired = totals["unrepaired"] - totals["in_flight"]
    capped = [s["table"] for s in summaries if s["cap_exceeded"]]
    log.info("reconcile run %s (%s): %s over %d tables", run_id, phase, totals, len(summaries))
    if params["dry_run"]:
        log.info("dry run: findings reported above, nothing repaired or recorded")
        return {**totals, "clean": totals["drifted"] == 0, "tables": len(summaries), "dry_run": True}
    if capped:
        ds.refuse(f"repair cap of {params['repair_cap']} rows exceeded in {capped}: nothing repaired there; dual-write looks broken")
    if unrepaired > params["max_unrepaired_rows"]:
        dirty = [s["table"] for s in summaries if s["unrepaired"] - s["in_flight"] > 0]
        ds.refuse(f"{unrepaired} drifted row(s) left unrepaired (max {params['max_unrepaired_rows']}) in {dirty}")
    clean = all(s["clean"] for s in summaries)
    if phase == "dual_write" and clean and not params["tables"]:
        ds.advance_phase(dag_id, run_id, "soak", {"first_clean_reconcile": run_id, **totals})
        log.info("first clean reconciliation with dual-write on: the soak starts now")
    return {**totals, "clean": clean, "tables": len(summaries)}
