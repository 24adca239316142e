"""Steps of the catch_up DAG: the writes the apps made on the sources since the
backfill's snapshots reach the target, before verification and dual-write.

Diff-based, with the reconciliation engine (source -> target): it needs neither
``wal_level = logical`` nor a replication slot, and it is the engine the soak
already trusts. Each table is passed over until a pass finds at most
``converged_rows`` drifted rows (or ``max_passes`` is reached); a pass that
leaves nothing behind records the source's xmin horizon from its start in
``sync_points``, which the next pass and ``verify`` judge drift against. Drift
the sources' history does not explain (a source row older than that horizon)
is held back and named, not copied over, unless ``repair_unexplained``.
"""

from __future__ import annotations

import logging

from migration_engine import dag_support as ds
from migration_engine import sync_points
from migration_engine.checks import CheckFailed, fail_without_retry
from migration_engine.reconcile.engine import Direction, reconcile_table
from migration_engine.reconcile.scan import current_horizon
from migration_engine.reconcile_steps import left_unrepaired, settle

log = logging.getLogger("migration.catch_up")


def catch_up_table(dag_id: str, run_id: str, table_name: str, params: dict) -> dict:
    """Pass over one table until it converges; returns the last pass's summary with the pass count."""
    m = ds.manifest()
    table = m.table(table_name)
    source, target = ds.source_endpoint(table.service), ds.target_endpoint()
    with ds.target_connection(dag_id) as conn:
        sync_points.ensure_table(conn, m)
        baseline = sync_points.baseline(conn, m, table)
    log.info("%s: judged against the %s", table.qualified,
             f"{baseline.by} (xmin horizon {baseline.xmin_horizon})" if baseline else "source as it is (no horizon known yet)")
    repaired = 0
    for number in range(1, params["max_passes"] + 1):
        with source.connect(application_name=ds.application_name(dag_id), autocommit=True) as src:
            started_at = current_horizon(src)
        with fail_without_retry():  # a stale run (the ledger moved on) refuses, no retry
            result = reconcile_table(
                table, source, target, run_id=run_id, direction=Direction.SOURCE_TO_TARGET, control_schema=m.control_schema,
                cap=params["repair_cap"], grace_seconds=params["grace_seconds"],
                horizon=baseline.xmin_horizon if baseline else None, repair_unexplained=params["repair_unexplained"],
                record=False, epoch=ds.run_epoch(dag_id),
            )
        repaired += result.repaired
        log.info("%s pass %d: %d drifted, %d repaired, %d in flight, %d unexplained, %d refused", table.qualified,
                 number, result.drifted, result.repaired, result.in_flight, result.unexplained, result.refused)
        if result.clean:
            with ds.target_connection(dag_id) as conn:
                sync_points.record(conn, m, table, started_at, dag_id, run_id)
            baseline = sync_points.Horizon(started_at, result.found_at, f"catch-up run {run_id}")
            if result.drifted <= params["converged_rows"]:
                break
            continue
        # Left behind only children waiting for parents the apps wrote since the horizon: caught up as far
        # as that horizon, which stays put (a refused child may be older than this pass's start).
        if baseline and left_unrepaired(result.summary()) == result.refused_late and not result.cap_exceeded:
            with ds.target_connection(dag_id) as conn:
                sync_points.record(conn, m, table, baseline.xmin_horizon, dag_id, run_id)
        break
    return {**result.summary(), "passes": number, "repaired_all_passes": repaired,
            "converged": result.clean and result.drifted <= params["converged_rows"]}


def judge(dag_id: str, run_id: str, summaries: list[dict], params: dict) -> dict:
    """Settle rows refused by a foreign key (parents first); fail naming unexplained drift or rows left behind."""
    summaries = settle(summaries, lambda table: catch_up_table(dag_id, run_id, table, params))
    totals = {key: sum(s[key] for s in summaries) for key in ("checked_rows", "repaired_all_passes", "in_flight", "unexplained")}
    unexplained = {s["table"]: s["unexplained_keys"] for s in summaries if s["held_back"]}
    # Children still refused after settling whose source rows are newer than the last sync wait for parents
    # the apps are writing now: the next catch-up or the dual-write reconciliation brings both.
    behind = {s["table"]: left_unrepaired(s) - s["refused_late"] for s in summaries
              if left_unrepaired(s) > s["refused_late"] or s["cap_exceeded"]}
    log.info("catch-up %s: %s over %d tables; not converged: %s", run_id, totals, len(summaries),
             [s["table"] for s in summaries if not s["converged"]])
    with fail_without_retry():
        if unexplained:
            raise CheckFailed(
                f"drift the sources' history does not explain (their rows are older than the last sync, so no app "
                f"write explains the target's difference): {unexplained}. Something other than the migration changed "
                f"or deleted these target rows; find out what, then trigger catch_up with repair_unexplained on"
            )
        if behind:
            raise CheckFailed(f"rows left unrepaired (cap exceeded or refused): {behind}; see each table task's log")
    return {**totals, "tables": len(summaries), "converged": all(s["converged"] for s in summaries)}
