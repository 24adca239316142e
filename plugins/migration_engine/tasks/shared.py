"""Steps several DAGs run, as plain functions over Airflow connections: the schema-freeze gate, the
sequence sync, the dual-write and read-path flags, the fence, the gates that wait on the ledger, the
reconcile pass of the manual phases and how passes settle, the smoke checks, and the packing of small
tables into shared mapped tasks. A step one DAG alone runs is in that DAG's own module."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import TypeVar

from migration_engine import dag_support as ds
from migration_engine import ledger, read_path, smoke, source_access
from migration_engine.checks import CheckFailed, check_non_negative, clean_streak_gate, time_in_phase_gate
from migration_engine.manifest import Table
from migration_engine.pacing import LoadBudget, probe_ms, probes_at_rest
from migration_engine.reconcile import drift_ledger, scan
from migration_engine.reconcile.engine import CutoverWindow, Direction, ReconcileResult, TableJob, reconcile_tables

log = logging.getLogger("migration.shared")

Item = TypeVar("Item")

# Whole small tables share one mapped task up to this many source bytes.
SMALL_TABLES_TASK_BYTES = 64 * 1024 * 1024


def check_source_schema_unchanged(dag_id: str) -> dict:
    """Every source schema still matches the fingerprint frozen at preflight."""
    from migration_engine.preflight import check_sources_unchanged

    conns = ds.Connections(dag_id)
    with conns.target() as ledger_conn:
        return check_sources_unchanged(ledger_conn, ds.manifest(), conns.source_endpoints())


def sync_sequences(dag_id: str, *, gap: int, dry_run: bool, to_source: bool = False) -> list[dict]:
    """Target sequences moved up to the sources' (or, ``to_source``, carried back), each move fenced by the
    run's ledger epoch."""
    from functools import partial

    from migration_engine.sequences import sync_sequences as sync

    conns = ds.Connections(dag_id)
    check_non_negative("sequence_gap", gap, maximum=10**12)
    m = ds.manifest()
    endpoints = conns.source_endpoints()
    moved_side = "source" if to_source else "target"
    epoch = None if dry_run else ds.run_epoch(dag_id)
    with conns.target() as fence_conn:
        fence = None if dry_run else partial(ledger.fenced, fence_conn, m.control_schema, epoch,
                                              f"moving the {moved_side} sequences")
        moved = sync(endpoints, conns.target_endpoint, m, gap=gap, dry_run=dry_run, to_source=to_source,
                     write_transaction=fence)
    for entry in moved:
        log.info("%s %s sequence %s.%s: %s -> %s", "would set" if dry_run else "set", moved_side, entry["table"],
                 entry["column"], entry[f"{moved_side}_before"], entry[f"{moved_side}_after"])
    return moved


def latency_budgets(dag_id: str, services: list[str], max_increase: float | None, *,
                    target: bool = False, probe: Callable = probe_ms) -> dict | None:
    """The ``probe``'s latency (the scans' unless given) on the apps' primary (these services' sources, or
    with ``target`` the target) before the run scans or copies, and the budget over it that load-aware pacing keeps:
    ``{"sources": {service: budget}, "target": budget or None}``, each budget a ``LoadBudget``
    as a dict. A DAG with mapped tasks measures in a task before them, so one task's load does
    not raise another's baseline. None with no ``max_increase``: pacing off."""
    if not max_increase:
        log.info("load-aware pacing off")
        return None
    conns = ds.Connections(dag_id)
    endpoints = {service: conns.source_endpoint(service) for service in services}
    if target:
        endpoints[None] = conns.target_endpoint
    budgets = {}
    for service, latencies in probes_at_rest(endpoints, probe).items():
        budget = LoadBudget.at_rest(latencies, max_increase)
        log.info("%s: probe latency before any scan or copy: median %.3f ms (spread at rest %.3f ms), p95 %.3f ms; "
                 "pacing keeps a stream's median under %.3f ms and a scan's p95 under %.3f ms (+%d%%)",
                 "target" if service is None else f"{service} source", budget.baseline_ms, budget.spread_ms,
                 budget.tail_ms, budget.limit_ms, budget.tail_limit_ms, round(max_increase * 100))
        budgets[service] = asdict(budget)
    return {"sources": {service: budgets[service] for service in services}, "target": budgets.get(None)}


def primary_budgets(dag_id: str, direction: Direction, max_increase: float | None) -> dict | None:
    """``latency_budgets`` of the apps' primary in a reconcile ``direction``: every source before cutover,
    the target after."""
    if direction is Direction.SOURCE_TO_TARGET:
        return latency_budgets(dag_id, [service.name for service in ds.manifest().services], max_increase)
    return latency_budgets(dag_id, [], max_increase, target=True)


def budget_for(budgets: dict | None, table: Table, direction: Direction) -> LoadBudget | None:
    """The budget a table's scans keep to (None: unpaced)."""
    if budgets is None:
        return None
    budget = budgets["sources"].get(table.service) if direction is Direction.SOURCE_TO_TARGET else budgets["target"]
    return LoadBudget(**budget) if budget else None


def tables_to_check(tables: list[str]) -> list[str]:
    m = ds.manifest()
    known = [t.qualified for t in m.tables]
    unknown = [t for t in tables if t not in known]
    if unknown:
        raise CheckFailed(f"parameter tables: {unknown!r} not in the manifest {m.file.name}; known tables: {known}")
    return [t for t in known if not tables or t in tables]


def table_groups(dag_id: str, tables: list[str], task_bytes: int = SMALL_TABLES_TASK_BYTES) -> list[dict]:
    """The mapped tasks of a per-table DAG (reconcile, catch-up): each a label and its tables, small
    tables packed together, parents first."""
    tables = tables_to_check(tables)
    sizes = source_table_bytes(tables, ds.Connections(dag_id))
    groups = pack(tables, lambda table: sizes[table] if sizes[table] <= task_bytes else None, task_bytes)
    return [{"label": group_label(group), "tables": group} for group in groups]


def source_horizons(dag_id: str) -> dict[str, int]:
    """Each source database's xmin horizon now: every row version written later carries an xid at or above it."""
    conns = ds.Connections(dag_id)
    horizons = {}
    for service in ds.manifest().services:
        with conns.source(service.name) as conn:
            horizons[service.name] = scan.current_horizon(conn)
    return horizons


def set_dual_write(dag_id: str, run_id: str, enabled: bool, *, dry_run: bool) -> dict:
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    statements = read_path.dual_write_statements(m, enabled, changed_by=f"{dag_id}/{run_id}")
    epoch = ds.run_epoch(dag_id)
    with conns.target() as conn:
        changed = read_path.apply(conn, statements, dry_run=dry_run, log=log.info, control_schema=m.control_schema,
                                  epoch=epoch)
        flags = read_path.read_flags(conn, m)
    return {"dual_write": enabled, "changed": changed, "flags": flags, "dry_run": dry_run}


def claim_fence(dag_id: str, run_id: str, reason: str, *, dry_run: bool) -> int | None:
    """Take the ledger's fence before this run's dangerous writes: a rollback or finalize run started
    alongside refuses its next write (a dry run takes nothing)."""
    conns = ds.Connections(dag_id)
    if dry_run:
        log.info("dry run: the fence is not taken")
        return None
    epoch = ds.run_epoch(dag_id)
    with conns.target() as conn:
        claimed = ledger.claim(conn, ds.manifest().control_schema, epoch, dag_id, run_id, reason)
    log.info("fence taken: ledger epoch %d -> %d (%s)", epoch, claimed, reason)
    return claimed


def wait_for_time_in_phase(dag_id: str, phase: str, min_hours: float, *, wait_left_hours: float) -> dict | None:
    """For a rescheduling sensor: the time in ``phase`` once it reaches ``min_hours``, None while
    waiting; refuses at once when more time is missing than the run may still wait."""
    conns = ds.Connections(dag_id)
    with conns.target() as conn:
        state = ledger.current_state(conn, ds.manifest().control_schema)
    return time_in_phase_gate(state, phase, min_hours, wait_left_hours=wait_left_hours)


def wait_for_clean_streak(dag_id: str, min_clean: int, direction: Direction, *, wait_left_hours: float) -> dict | None:
    """For a rescheduling sensor: the clean streak once it reaches ``min_clean`` finished runs that were
    complete, all-table, error-free and clean in ``direction``; None while waiting for more reconciliation
    runs; refuses when the run may wait no longer."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    with conns.target() as conn:
        drift_ledger.ensure_ledger(conn, m.control_schema)
        streak = drift_ledger.clean_streak(conn, m.control_schema, direction.value, [t.qualified for t in m.tables])
    passed = clean_streak_gate(streak, min_clean, direction.value, wait_left_hours=wait_left_hours)
    if passed:
        log.info("clean streak: %s", passed)
    return passed


def clean_reconciles_sensor(dag_id: str, direction: str):
    """The gate cutover (source_to_target) and finalize (target_to_source) wait on: the last
    ``min_clean_reconciles`` runs clean in that direction."""
    from airflow.sdk import task

    @task.sensor(pool=ds.TARGET_POOL, **ds.GATE_SENSOR)
    def wait_for_clean_reconciles(params=None):
        return ds.poke(wait_for_clean_streak(
            dag_id, params["min_clean_reconciles"], Direction(direction),
            wait_left_hours=ds.gate_wait_left(params["gate_wait_hours"])))

    return wait_for_clean_reconciles


def reconcile_all(dag_id: str, run_id: str, direction: Direction, *, dry_run: bool, cap: int, max_unrepaired: int,
                  cutover_window: dict | None = None, max_latency_increase: float | None = None) -> dict:
    """One reconciliation pass over every table, parents first, then the tables left with rows refused
    by a foreign key settled again, fenced by the run's ledger epoch; refuses when drift above
    ``max_unrepaired`` remains. With a ``cutover_window`` (``read_cutover_window``) a target → source pass
    repairs only what the failed window explains, and reports the rest as held back. With
    ``max_latency_increase`` the scans are paced by the apps' primary's health (``primary_budgets``)."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    target = conns.target_endpoint
    epoch = ds.run_epoch(dag_id)
    budgets = primary_budgets(dag_id, direction, max_latency_increase)

    def reconcile_some(names: list[str]) -> dict[str, dict]:
        jobs = []
        for name in names:
            table = m.table(name)
            window = (CutoverWindow(cutover_window["sources"][table.service], cutover_window["target"])
                      if cutover_window else None)
            jobs.append(TableJob(table, conns.source_endpoint(table.service), window=window,
                                 budget=budget_for(budgets, table, direction)))
        return summaries_of(dict(zip(names, reconcile_tables(
            jobs, target, run_id=f"{dag_id}/{run_id}", direction=direction, control_schema=m.control_schema,
            cap=cap, dry_run=dry_run, epoch=epoch,
        ), strict=True)))

    results = list(reconcile_some([table.qualified for table in m.tables]).values())
    if not dry_run:
        results = settle(results, reconcile_some, m.tables)
        with conns.target() as conn, \
             ledger.fenced(conn, m.control_schema, epoch, "recording the reconcile pass"):
            drift_ledger.record_outcome(conn, m.control_schema, f"{dag_id}/{run_id}", direction.value,
                                        [t.qualified for t in m.tables])
    total = pass_totals(results)
    log.info("reconcile pass (%s, dry_run=%s): %s", direction.value, dry_run, total)
    return pass_verdict(results, total, cap=cap, max_unrepaired=max_unrepaired, dry_run=dry_run)


def results_of(outcomes: dict[str, ReconcileResult | Exception]) -> dict[str, ReconcileResult]:
    """Table -> its result; raises the first table's exception when one errored."""
    for outcome in outcomes.values():
        if isinstance(outcome, Exception):
            raise outcome
    return outcomes


def summaries_of(outcomes: dict[str, ReconcileResult | Exception]) -> dict[str, dict]:
    return {table: result.summary() for table, result in results_of(outcomes).items()}


def left_unrepaired(summary: dict) -> int:
    """Rows drifted and not repaired, rows still being written and unexplained rows held back aside."""
    return summary["unrepaired"] - summary["in_flight"] - summary["held_back"]


SETTLE_PASSES = 3


def settle(summaries: list[dict], again, tables: list[Table]) -> list[dict]:
    """Run ``again`` (table names, parents first -> their summaries) on the tables left with unrepaired
    rows, their parents included, up to ``SETTLE_PASSES`` times while any is left. ``tables`` are the
    manifest's, parents first: their order and references decide what runs again.

    Tables run side by side (or one after the other, parents first), so a child row
    can be refused by its foreign key when its parent was written after the parent's
    table was checked; once the parent is level, the child repairs. The apps keep
    writing meanwhile, so one pass can leave a new such pair behind.
    """
    for _ in range(SETTLE_PASSES):
        dirty = {s["table"] for s in summaries if left_unrepaired(s) > 0 and not s["cap_exceeded"]}
        if not dirty:
            break
        wanted = set(dirty)
        for table in reversed(tables):
            if table.qualified in wanted:
                wanted |= {f"{table.target_schema}.{parent}" for parent in table.references}
        log.info("settling %s (and their parents %s) after refused repairs", sorted(dirty), sorted(wanted - dirty))
        redone = again([t.qualified for t in tables if t.qualified in wanted])
        summaries = [redone.get(s["table"], s) for s in summaries]
    return summaries


def pass_totals(results: list[dict]) -> dict:
    """One reconcile pass of a manual phase over every table: its totals, per table too."""
    return {
        "tables": len(results),
        "checked_rows": sum(r["checked_rows"] for r in results),
        "drifted": sum(r["drifted"] for r in results),
        "repaired": sum(r["repaired"] for r in results),
        "in_flight": sum(r["in_flight"] for r in results),
        "unrepaired": sum(left_unrepaired(r) for r in results),
        "held_back": sum(r["held_back"] for r in results),
        "held_back_keys": {r["table"]: r["unexplained_keys"] for r in results if r["held_back"]},
        "dirty_tables": [r["table"] for r in results if left_unrepaired(r)],
        "per_table": [
            {k: r[k] for k in ("table", "checked_rows", "drifted", "repaired", "in_flight", "unrepaired")} for r in results
        ],
    }


def pass_verdict(results: list[dict], total: dict, *, cap: int, max_unrepaired: int, dry_run: bool) -> dict:
    """A manual phase's reconcile pass refuses when a table's drift is above the repair ``cap`` (nothing was
    repaired there), or, unless a dry run, when more than ``max_unrepaired`` rows are left; else its totals."""
    capped = [r["table"] for r in results if r["cap_exceeded"]]
    if capped:
        raise CheckFailed(f"reconciliation refused to repair: drift above the cap of {cap} rows in {capped}")
    if not dry_run and total["unrepaired"] > max_unrepaired:
        raise CheckFailed(f"{total['unrepaired']} drifted row(s) remain unrepaired (max {max_unrepaired}) in "
                          f"{total['dirty_tables']}; refused by: { {r['table']: r['refused_by'] for r in results if r['refused_by']} }")
    return total


def plan_read_path(side: str, dag_id: str, run_id: str) -> list:
    """The statements that set every service's read path to ``side`` (for a RenderedSqlOperator)."""
    return read_path.read_path_statements(ds.manifest(), side, changed_by=f"{dag_id}/{run_id}")


FLIP_FACT = "read_path_flip"


def apply_read_path(dag_id: str, run_id: str, statements: list, dry_run: bool) -> dict:
    """Run the rendered read-path statements in one transaction (only log them on a dry run). A flip is
    recorded as started, in a transaction of its own, before it runs: if it then fails, its outcome is
    unknown (``record_flip_outcome_unknown``)."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    side = next(s.params["side"] for s in statements if "side" in s.params)
    epoch = ds.run_epoch(dag_id)
    with conns.target() as conn:
        if not dry_run:
            with ledger.fenced(conn, m.control_schema, epoch, f"recording the flip of the read path to the {side}"):
                ledger.record_fact(conn, m.control_schema, FLIP_FACT, {"side": side}, dag_id, run_id)
        changed = read_path.apply(conn, statements, dry_run=dry_run, log=log.info, control_schema=m.control_schema,
                                  epoch=epoch)
        flags = read_path.read_flags(conn, m)
    log.info("read path %s: %d service(s) changed; flags now %s", "rendered" if dry_run else "set", changed, flags)
    return {"side": side, "changed": changed, "flags": flags, "dry_run": dry_run}


def read_path_flags(dag_id: str) -> dict:
    conns = ds.Connections(dag_id)
    with conns.target() as conn:
        return read_path.read_flags(conn, ds.manifest())


def smoke_checks(dag_id: str, *, layout: str) -> dict:
    """App-like checks through the pooler (target) or on each source database (after rollback)."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    endpoints = ({s.name: conns.pooler_endpoint for s in m.services} if layout == "target"
                 else conns.source_endpoints())
    results = smoke.run_smoke_checks(endpoints, m, layout=layout)
    failed = [r.to_dict() for r in results if not r.ok]
    for result in results:
        log.info("smoke %s %s/%s: %s rows=%s %.1f ms %s", layout, result.service, result.check,
                 "ok" if result.ok else "FAILED", result.rows, result.ms, result.error)
    return {"layout": layout, "checks": len(results), "failed": failed, "ok": not failed}


def plan_app_writes(allowed: bool, dag_id: str, run_id: str) -> list:
    """Every service's revoke (or restore) statements (for a RenderedSqlOperator); each runs on its own source."""
    return [statement for service in ds.manifest().services
            for statement in source_access.statements(service, revoke=not allowed)]


def set_app_writes(allowed: bool, dag_id: str, run_id: str, statements: list, dry_run: bool) -> dict:
    """Run each service's rendered revoke (or restore) on its source, fenced by the run's ledger epoch; a revoke
    that leaves any write fails without retries."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    epoch = ds.run_epoch(dag_id)
    action = "restoring" if allowed else "revoking"
    remaining = {}
    for service in m.services:
        with conns.target() as fence_conn, conns.source(service.name) as conn, \
                ledger.fenced(fence_conn, m.control_schema, epoch, f"{action} the {service.name} app's writes", conn):
            remaining[service.name] = source_access.set_app_writes(
                conn, service, allowed=allowed, dry_run=dry_run, log=log.info,
                planned=[s for s in statements if s.service == service.name],
            )
    return {"app_writable_tables_left": remaining, "dry_run": dry_run}


def read_ledger_phase(dag_id: str, allowed: set, action: str) -> dict:
    """The first gate of the DAGs that run before the ledger may exist (preflight, schema_baseline): read
    only, nothing created; refuses when out of order. A missing ledger is epoch 0, as a fresh one starts."""
    conns = ds.Connections(dag_id)
    schema = ds.manifest().control_schema
    with conns.target(autocommit=False) as conn:
        state = ledger.require_phase(conn, schema, allowed, action)
        # The epoch the run's ledger move is fenced by.
        epoch = ledger.current_epoch(conn, schema).number if ledger.ledger_exists(conn, schema) else 0
    return {"phase": state.phase, "since": state.at.isoformat() if state.at else None, "epoch": epoch}


# -- packing small tables into shared mapped tasks ------------------------------------------
# A mapped task per tiny table costs more in Airflow's scheduling than in work
# (seconds per task instance, against milliseconds for a table of a few hundred
# rows), so tables whose source is small share a task, in manifest order
# (parents first); a large table keeps a task of its own.

def pack(items: Iterable[Item], size_of: Callable[[Item], int | None],
         task_bytes: int = SMALL_TABLES_TASK_BYTES) -> list[list[Item]]:
    """Items in order, grouped into tasks of up to ``task_bytes``; an item sized None gets a task of its own."""
    tasks: list[list[Item]] = []
    packing: list[Item] = []
    packed_bytes = 0
    for item in items:
        size = size_of(item)
        if size is None:
            tasks.append([item])
            packing, packed_bytes = [], 0
            continue
        if packing and packed_bytes + size > task_bytes:
            packing, packed_bytes = [], 0
        if not packing:
            tasks.append(packing)
        packing.append(item)
        packed_bytes += size
    return tasks


def source_table_bytes(tables: list[str], conns: ds.Connections) -> dict[str, int]:
    """Qualified table name -> its source table's total size, one connection per service. From the
    catalog only: packing needs no row count, and counting would read every small table on the apps' primary."""
    from migration_engine.chunks import table_bytes

    m = ds.manifest()
    sizes = {}
    for service in m.services:
        mine = [m.table(t) for t in tables if m.table(t).service == service.name]
        if mine:
            with conns.source(service.name) as conn:
                sizes.update({t.qualified: table_bytes(conn, t) for t in mine})
    return sizes


def group_label(tables: list[str]) -> str:
    if len(tables) == 1:
        return tables[0]
    return f"{tables[0]} .. {tables[-1]} ({len(tables)} tables)"
