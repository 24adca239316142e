"""Steps of the manual phases (dual-write, cutover, rollback, finalize) as plain
functions over Airflow connections. DAG tasks call these; each returns a small
JSON-able dict for XCom, logs what it did, and is safe to run again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import psycopg

from migration_engine import dag_support as ds
from migration_engine import ledger, read_path, smoke, source_access
from migration_engine.checks import (
    CheckFailed,
    check_non_negative,
    clean_streak_gate,
    reachable_gate,
    rollback_window_gate,
    time_in_phase_gate,
)
from migration_engine.endpoints import EndpointError, redact
from migration_engine.reconcile import drift_ledger
from migration_engine.reconcile.engine import CutoverWindow, Direction, TableJob, reconcile_tables
from migration_engine.tasks import reconcile as reconcile_steps

log = logging.getLogger("migration.phases")


def target_reachable(dag_id: str, *, started_at: datetime, wait_seconds: float) -> bool:
    """For the reachability sensor: True once both the direct URL and the pooler answer; refuses, naming
    what did not answer, once ``wait_seconds`` have passed since ``started_at``."""
    conns = ds.Connections(dag_id)
    failures, reached = [], []
    for endpoint in (conns.target_endpoint, conns.pooler_endpoint):
        try:
            with endpoint.connect(autocommit=True) as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
            reached.append({"endpoint": endpoint.name, "where": endpoint.describe(), "server_version": version})
        except (EndpointError, psycopg.Error) as exc:
            failures.append(str(exc) if isinstance(exc, EndpointError) else f"{endpoint.name}: {redact(str(exc), endpoint.password)}")
    waited = (datetime.now(UTC) - started_at).total_seconds()
    if reachable_gate(failures, waited_seconds=waited, wait_seconds=wait_seconds):
        log.info("reachable: %s", reached)
        return True
    return False


def reconcile_all(dag_id: str, run_id: str, direction: Direction, *, dry_run: bool, cap: int, max_unrepaired: int,
                  cutover_window: dict | None = None) -> dict:
    """One reconciliation pass over every table, parents first, then the tables left with rows refused
    by a foreign key settled again, fenced by the run's ledger epoch; refuses when drift above
    ``max_unrepaired`` remains. With a ``cutover_window`` (``read_cutover_window``) a target → source pass
    repairs only what the failed window explains, and reports the rest as held back."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    target = conns.target_endpoint
    epoch = ds.run_epoch(dag_id)

    def reconcile_some(names: list[str]) -> dict[str, dict]:
        jobs = []
        for name in names:
            table = m.table(name)
            window = (CutoverWindow(cutover_window["sources"][table.service], cutover_window["target"])
                      if cutover_window else None)
            jobs.append(TableJob(table, conns.source_endpoint(table.service), window=window))
        return reconcile_steps.summaries_of(dict(zip(names, reconcile_tables(
            jobs, target, run_id=f"{dag_id}/{run_id}", direction=direction, control_schema=m.control_schema,
            cap=cap, dry_run=dry_run, epoch=epoch,
        ), strict=True)))

    results = list(reconcile_some([table.qualified for table in m.tables]).values())
    if not dry_run:
        results = reconcile_steps.settle(results, reconcile_some, m.tables)
        with conns.target() as conn, \
             ledger.fenced(conn, m.control_schema, epoch, "recording the reconcile pass"):
            drift_ledger.record_outcome(conn, m.control_schema, f"{dag_id}/{run_id}", direction.value,
                                        [t.qualified for t in m.tables])
    total = reconcile_steps.pass_totals(results)
    log.info("reconcile pass (%s, dry_run=%s): %s", direction.value, dry_run, total)
    return reconcile_steps.pass_verdict(results, total, cap=cap, max_unrepaired=max_unrepaired, dry_run=dry_run)


def check_rollback_window(dag_id: str, started: dict) -> dict:
    """A rollback from ``finalized`` only within the retention window finalize recorded: after it, the sources
    are no longer kept level, nor their backups."""
    conns = ds.Connections(dag_id)
    if started["phase"] != "finalized":
        return started
    with conns.target() as conn:
        fact = ledger.read_fact(conn, ds.manifest().control_schema, "rollback_retention")
    allowed = rollback_window_gate(started, datetime.fromisoformat(fact.value["keep_source_until"]) if fact else None)
    log.info("finalized, within the retention window (sources kept until %s): the rollback may run",
             allowed["keep_source_until"])
    return allowed


def restore_app_writes(dag_id: str, run_id: str, statements: list, dry_run: bool) -> dict:
    """Rollback: the apps' writes back on the sources, when the run started after finalize revoked them."""
    started_in = ds.run_start()["phase"]
    if started_in != "finalized":
        log.info("the rollback started in %s: finalize revoked nothing, nothing to restore", started_in)
        return {"restored": False}
    return {"restored": True, **set_app_writes(True, dag_id, run_id, statements, dry_run)}


def catch_source_up(dag_id: str, run_id: str, *, dry_run: bool, cap: int) -> dict | None:
    """Rollback from ``finalized``: the target's writes since the last hourly reconcile onto the sources
    (target → source) while the target is still the apps' primary, before the read path flips back."""
    started_in = ds.run_start()["phase"]
    if started_in != "finalized":
        log.info("the rollback started in %s: dual-write kept the sources level, no catch-up before the flip", started_in)
        return None
    return reconcile_all(dag_id, run_id, Direction.TARGET_TO_SOURCE, dry_run=dry_run, cap=cap, max_unrepaired=0)


def record_cutover_window(dag_id: str, run_id: str, *, dry_run: bool) -> dict | None:
    """Just before the flip, the xmin horizon of each source and of the target: a rollback's repair changes
    only source rows older than it (fenced by the run's ledger epoch)."""
    from migration_engine.reconcile.scan import current_horizon

    conns = ds.Connections(dag_id)
    m = ds.manifest()
    sources = {}
    for service in m.services:
        with conns.source(service.name) as src:
            sources[service.name] = current_horizon(src)
    epoch = ds.run_epoch(dag_id)
    with conns.target() as conn:
        window = {"sources": sources, "target": current_horizon(conn)}
        if dry_run:
            log.info("dry run: the cutover window %s is not recorded", window)
            return window
        with ledger.fenced(conn, m.control_schema, epoch, "recording the cutover window"):
            ledger.record_fact(conn, m.control_schema, "cutover_window", window, dag_id, run_id)
    log.info("cutover window recorded: %s", window)
    return window


def read_cutover_window(dag_id: str) -> dict:
    """The window the last cutover recorded; a rollback repair without one would take the target as the
    truth for every row, so it refuses."""
    conns = ds.Connections(dag_id)
    with conns.target() as conn:
        fact = ledger.read_fact(conn, ds.manifest().control_schema, "cutover_window")
    if fact is None:
        raise CheckFailed("no cutover window is recorded (the cutover ran before it was recorded): the source repair "
                          "cannot tell the failed window's writes from the apps' later ones, so it writes nothing. Reconcile "
                          "the rows named in the reverse drift report by hand")
    return fact.value


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


def flip_started_in_run(started: ledger.Fact | None, dag_id: str, run_id: str, *, dry_run: bool) -> bool:
    """Whether the flip fact the ledger holds (``FLIP_FACT``) says this run's flip started, so that it may
    have committed. A dry run flips nothing; a fact from another run says nothing about this one."""
    return not dry_run and started is not None and (started.dag_id, started.run_id) == (dag_id, run_id)


def record_flip_outcome_unknown(dag_id: str, run_id: str, *, dry_run: bool) -> None:
    """After the cutover's flip task failed: when this run's flip had started, it may have committed, so the
    ledger moves to ``flip_unknown`` (where rollback is accepted) and the run fails saying so. Reading the
    flags needs the target: until it answers, this task fails and retries."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    with conns.target() as conn:
        started = ledger.read_fact(conn, m.control_schema, FLIP_FACT)
        flags = read_path.read_flags(conn, m)
    if not flip_started_in_run(started, dag_id, run_id, dry_run=dry_run):
        log.info("the flip never started in this run: the read path was not touched (flags %s)", flags)
        return
    ds.advance_phase(dag_id, run_id, "flip_unknown", {"reason": "the read-path flip failed after it started",
                                                      "flags_after": flags})
    raise CheckFailed(f"the read-path flip to the target failed after it started, so it may have committed; the flags now "
                      f"read {flags}. The ledger says flip_unknown: trigger rollback (it puts every flag back on the source "
                      f"and repairs the cutover window), then the hourly reconcile leads back to a soak")


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


def app_writable_tables(dag_id: str) -> dict[str, int]:
    """Per service, the source tables its app role can still write: what finalize would revoke."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    counts = {}
    for service in m.services:
        with conns.source(service.name, autocommit=False) as conn:
            counts[service.name] = source_access.app_write_grants(conn, service)
    return counts


def record_retention(dag_id: str, run_id: str, retention_days: int) -> dict:
    conns = ds.Connections(dag_id)
    check_non_negative("retention_days", retention_days, maximum=3650)
    if retention_days < 7:
        raise CheckFailed(f"retention_days must be at least 7 (runbook section 11), got {retention_days}")
    until = datetime.now(UTC) + timedelta(days=retention_days)
    fact = {"retention_days": retention_days, "keep_source_until": until.isoformat()}
    with conns.target() as conn:
        ledger.record_fact(conn, ds.manifest().control_schema, "rollback_retention", fact, dag_id, run_id)
    return fact


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


def final_backup(dag_id: str, run_id: str, *, dry_run: bool) -> dict:
    """A fresh verified pg_dump of every source, recorded in the ledger as ``final_backup:<service>``."""
    from migration_engine import backup
    from migration_engine.preflight import frozen_fingerprint

    conns = ds.Connections(dag_id)
    m = ds.manifest()
    root = backup.default_backup_root() / m.migration / "final"
    records = {}
    with conns.target() as conn:
        for service in m.services:
            if dry_run:
                log.info("dry run: would write a final verified backup of the %s source under %s", service.name, root)
                continue
            fingerprint, _ = frozen_fingerprint(conn, m, service.name)
            record = backup.back_up(
                conns.source_endpoint(service.name), service.name, root, fingerprint.sha256,
                [t.source_ident for t in service.tables], fresh=True,
            )
            ledger.record_fact(conn, m.control_schema, f"final_backup:{service.name}", record.as_dict(), dag_id, run_id)
            records[service.name] = record.as_dict()
    return records


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
