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
from dataclasses import dataclass

from migration_engine import dag_support as ds
from migration_engine import sync_points
from migration_engine.checks import CheckFailed
from migration_engine.manifest import Table
from migration_engine.reconcile.engine import Direction, ReconcileResult, TableJob, reconcile_tables
from migration_engine.tasks.shared import (
    budget_for,
    left_unrepaired,
    primary_budgets,
    results_of,
    settle,
    source_horizons,
)

log = logging.getLogger("migration.catch_up")


@dataclass
class _CatchingUp:
    table: Table
    baseline: sync_points.Horizon | None
    passes: int = 0
    repaired: int = 0
    result: ReconcileResult | None = None
    done: bool = False

    def summary(self, converged_rows: int) -> dict:
        result = self.result
        return {**result.summary(), "passes": self.passes, "repaired_all_passes": self.repaired,
                "converged": result.clean and result.drifted <= converged_rows}


def source_health(dag_id: str, max_increase: float | None) -> dict | None:
    """The budgets the catch-up's scans keep to, measured on every source before any scan."""
    return primary_budgets(dag_id, Direction.SOURCE_TO_TARGET, max_increase)


def catch_up_group(dag_id: str, run_id: str, tables: list[str], params: dict, *, budgets: dict | None = None) -> list[dict]:
    """Pass over the tables together (one grace period per pass) until each converges; returns each
    table's last pass summary with its pass count. With ``budgets`` the hash scans are paced by each
    source's health."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    target = conns.target_endpoint
    with conns.target() as conn:
        sync_points.ensure_table(conn, m)
        tables_left = [_CatchingUp(m.table(name), sync_points.baseline(conn, m, m.table(name))) for name in tables]
    for state in tables_left:
        log.info("%s: judged against the %s", state.table.qualified,
                 f"{state.baseline.by} (xmin horizon {state.baseline.xmin_horizon})" if state.baseline
                 else "source as it is (no horizon known yet)")
    states = list(tables_left)
    for number in range(1, params["max_passes"] + 1):
        tables_left = [state for state in tables_left if not state.done]
        if not tables_left:
            break
        started_at = source_horizons(dag_id)
        jobs = [TableJob(state.table, conns.source_endpoint(state.table.service),
                         horizon=state.baseline.xmin_horizon if state.baseline else None,
                         budget=budget_for(budgets, state.table, Direction.SOURCE_TO_TARGET))
                for state in tables_left]
        results = results_of({state.table.qualified: result for state, result in zip(tables_left, reconcile_tables(
            jobs, target, run_id=run_id, direction=Direction.SOURCE_TO_TARGET, control_schema=m.control_schema,
            cap=params["repair_cap"], grace_seconds=params["grace_seconds"], record=False,
            repair_unexplained=params["repair_unexplained"], epoch=ds.run_epoch(dag_id),
        ), strict=True)})
        for state, result in zip(tables_left, results.values(), strict=True):
            _after_pass(dag_id, run_id, state, number, result, started_at[state.table.service], params)
    return [state.summary(params["converged_rows"]) for state in states]


def _after_pass(dag_id: str, run_id: str, state: _CatchingUp, number: int, result: ReconcileResult,
                started_at: int, params: dict) -> None:
    """Record how far the table is caught up, and whether it needs another pass."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    table = state.table
    state.passes, state.result = number, result
    state.repaired += result.repaired
    log.info("%s pass %d: %d drifted, %d repaired, %d in flight, %d unexplained, %d refused", table.qualified,
             number, result.drifted, result.repaired, result.in_flight, result.unexplained, result.refused)
    if result.clean:
        with conns.target() as conn:
            sync_points.record(conn, m, table, started_at, dag_id, run_id)
        state.baseline = sync_points.Horizon(started_at, result.found_at, f"catch-up run {run_id}")
        state.done = result.drifted <= params["converged_rows"]
        return
    # Left behind only children waiting for parents the apps wrote since the horizon: caught up as far
    # as that horizon, which stays put (a refused child may be older than this pass's start).
    if state.baseline and left_unrepaired(result.summary()) == result.refused_late and not result.cap_exceeded:
        with conns.target() as conn:
            sync_points.record(conn, m, table, state.baseline.xmin_horizon, dag_id, run_id)
    state.done = True


def judge(dag_id: str, run_id: str, summaries: list[dict], params: dict) -> dict:
    """Settle rows refused by a foreign key (parents first); fail naming unexplained drift or rows left behind."""
    summaries = settle(summaries, lambda names: {summary["table"]: summary
                                                  for summary in catch_up_group(dag_id, run_id, names, params)},
                       ds.manifest().tables)
    log.info("catch-up %s: %s over %d tables; not converged: %s", run_id, totals_of(summaries), len(summaries),
             [s["table"] for s in summaries if not s["converged"]])
    return verdict(summaries)


def totals_of(summaries: list[dict]) -> dict:
    return {key: sum(s[key] for s in summaries) for key in ("checked_rows", "repaired_all_passes", "in_flight", "unexplained")}


def verdict(summaries: list[dict]) -> dict:
    """How a catch-up run ends, from its tables' last passes once settled: refuses naming drift the sources'
    history does not explain, then rows left unrepaired; else its totals and whether every table converged."""
    unexplained = {s["table"]: s["unexplained_keys"] for s in summaries if s["held_back"]}
    # Children still refused after settling whose source rows are newer than the last sync wait for parents
    # the apps are writing now: the next catch-up or the dual-write reconciliation brings both.
    behind = {s["table"]: left_unrepaired(s) - s["refused_late"] for s in summaries
              if left_unrepaired(s) > s["refused_late"] or s["cap_exceeded"]}
    if unexplained:
        raise CheckFailed(
            f"drift the sources' history does not explain (their rows are older than the last sync, so no app "
            f"write explains the target's difference): {unexplained}. Something other than the migration changed "
            f"or deleted these target rows; find out what, then trigger catch_up with repair_unexplained on"
        )
    if behind:
        raise CheckFailed(f"rows left unrepaired (cap exceeded or refused): {behind}; see each table task's log")
    return {**totals_of(summaries), "tables": len(summaries), "converged": all(s["converged"] for s in summaries)}
