"""Steps of the cutover DAG as plain functions over Airflow connections: the reachability gate, the final
reconciliation, the evidence for the approval, the cutover window, a flip whose outcome is unknown, and
the drain.

The drain: the old primary's last writes, carried to the new one.

Until the read path flips, the apps write the source first and the target
second, and a second write can be lost. The final reconcile levels what was
written before it started; what the apps wrote on the source after that, up to
the moment each app saw the flip, would otherwise be lost: once the target is
the primary, the target → source reconcile makes the source equal the target.

So, after the flip and once the apps have had time to see it, one more pass
source → target carries over a row only where

- the source wrote it since the final reconcile began (its xmin is at or above
  that run's source horizon), so it is a write that pass may have missed, and
- the target has not written it since the flip (its xmin is below the target
  horizon taken just before the flip): the apps' own newer write on their new
  primary always wins.

Anything else that differs is reported, not repaired: the hourly reconcile,
target → source from now on, settles it the target's way.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import psycopg

from migration_engine import dag_support as ds
from migration_engine import ledger, read_path
from migration_engine.checks import CheckFailed, reachable_gate
from migration_engine.endpoints import EndpointError, redact
from migration_engine.reconcile import scan
from migration_engine.reconcile.engine import Direction, TableJob, reconcile_tables
from migration_engine.tasks import shared

log = logging.getLogger("migration.cutover")


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


def final_reconcile(dag_id: str, run_id: str, *, dry_run: bool, cap: int, max_unrepaired: int,
                    max_latency_increase: float | None = None) -> dict:
    """The last pass source → target before the flip, with each source's horizon taken before it began,
    paced by the sources' health when ``max_latency_increase`` is given."""
    # Taken before the pass: what the sources write from here on, the drain after the flip carries over.
    horizons = shared.source_horizons(dag_id)
    final = shared.reconcile_all(dag_id, run_id, Direction.SOURCE_TO_TARGET, dry_run=dry_run, cap=cap,
                                 max_unrepaired=max_unrepaired, max_latency_increase=max_latency_increase)
    return {**final, "source_horizons": horizons}


def gather_evidence(dag_id: str, soak: dict, streak: dict, final: dict, *, sequence_gap: int, dry_run: bool) -> dict:
    """What the approval shows: the gates' results, the sequences the sync would move and the flags now."""
    from migration_engine import evidence

    sequences = shared.sync_sequences(dag_id, gap=sequence_gap, dry_run=True)
    flags = shared.read_path_flags(dag_id)
    summary = evidence.cutover_summary(
        soak=soak, streak=streak, final=final, sequences=sequences, flags=flags, dry_run=dry_run)
    return {"soak": soak, "streak": streak, "final": final, "sequences": sequences, "flags": flags, "summary": summary}


def record_cutover_window(dag_id: str, run_id: str, *, dry_run: bool) -> dict | None:
    """Just before the flip, the xmin horizon of each source and of the target: a rollback's repair changes
    only source rows older than it (fenced by the run's ledger epoch)."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    sources = shared.source_horizons(dag_id)
    epoch = ds.run_epoch(dag_id)
    with conns.target() as conn:
        window = {"sources": sources, "target": scan.current_horizon(conn)}
        if dry_run:
            log.info("dry run: the cutover window %s is not recorded", window)
            return window
        with ledger.fenced(conn, m.control_schema, epoch, "recording the cutover window"):
            ledger.record_fact(conn, m.control_schema, "cutover_window", window, dag_id, run_id)
    log.info("cutover window recorded: %s", window)
    return window


def target_horizon(dag_id: str) -> int:
    conns = ds.Connections(dag_id)
    with conns.target() as conn:
        return scan.current_horizon(conn)


def flip_started_in_run(started: ledger.Fact | None, dag_id: str, run_id: str, *, dry_run: bool) -> bool:
    """Whether the flip fact the ledger holds (``shared.FLIP_FACT``) says this run's flip started, so that it may
    have committed. A dry run flips nothing; a fact from another run says nothing about this one."""
    return not dry_run and started is not None and (started.dag_id, started.run_id) == (dag_id, run_id)


def record_flip_outcome_unknown(dag_id: str, run_id: str, *, dry_run: bool) -> None:
    """After the cutover's flip task failed: when this run's flip had started, it may have committed, so the
    ledger moves to ``flip_unknown`` (where rollback is accepted) and the run fails saying so. Reading the
    flags needs the target: until it answers, this task fails and retries."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    with conns.target() as conn:
        started = ledger.read_fact(conn, m.control_schema, shared.FLIP_FACT)
        flags = read_path.read_flags(conn, m)
    if not flip_started_in_run(started, dag_id, run_id, dry_run=dry_run):
        log.info("the flip never started in this run: the read path was not touched (flags %s)", flags)
        return
    ds.advance_phase(dag_id, run_id, "flip_unknown", {"reason": "the read-path flip failed after it started",
                                                      "flags_after": flags})
    raise CheckFailed(f"the read-path flip to the target failed after it started, so it may have committed; the flags now "
                      f"read {flags}. The ledger says flip_unknown: trigger rollback (it puts every flag back on the source "
                      f"and repairs the cutover window), then the hourly reconcile leads back to a soak")


def drain_old_primary(dag_id: str, run_id: str, *, source_horizons: dict[str, int], flip_horizon: int,
                      wait_seconds: float, cap: int, dry_run: bool, max_latency_increase: float | None = None) -> dict:
    """Wait for the apps to see the flip, then carry the source's writes since ``source_horizons`` that
    the target has not overwritten since ``flip_horizon``; returns the totals and the keys left alone. With
    ``max_latency_increase`` the scans are paced by the target's health: it is the apps' primary now."""
    conns = ds.Connections(dag_id)
    if dry_run:
        log.info("dry run: nothing flipped, so there is nothing to drain")
        return {"dry_run": True}
    log.info("waiting %ss for every app to see the flipped read path", wait_seconds)
    time.sleep(wait_seconds)
    m = ds.manifest()
    target = conns.target_endpoint
    epoch = ds.run_epoch(dag_id)
    budgets = shared.primary_budgets(dag_id, Direction.TARGET_TO_SOURCE, max_latency_increase)

    def drain_some(names: list[str]) -> dict[str, dict]:
        jobs = [TableJob(m.table(name), conns.source_endpoint(m.table(name).service),
                         horizon=source_horizons[m.table(name).service],
                         budget=shared.budget_for(budgets, m.table(name), Direction.TARGET_TO_SOURCE)) for name in names]
        return shared.summaries_of(dict(zip(names, reconcile_tables(
            jobs, target, run_id=f"{dag_id}/{run_id}/drain", direction=Direction.SOURCE_TO_TARGET,
            control_schema=m.control_schema, cap=cap, repair_unexplained=False, target_horizon=flip_horizon,
            epoch=epoch,
        ), strict=True)))

    results = shared.settle(list(drain_some([t.qualified for t in m.tables]).values()), drain_some, m.tables)
    totals = {key: sum(r[key] for r in results) for key in ("drifted", "repaired", "in_flight", "held_back")}
    left = {r["table"]: {"unrepaired": shared.left_unrepaired(r), "refused_by": r["refused_by"], "cap_exceeded": r["cap_exceeded"]}
            for r in results if shared.left_unrepaired(r) or r["cap_exceeded"]}
    held = {r["table"]: r["unexplained_keys"] for r in results if r["held_back"]}
    log.info("drained the old primary: %s; left to the target's way: %s", totals, held)
    if left:
        # Retried: a refused child usually lands once its parent has.
        raise RuntimeError(f"rows the old primary wrote could not be carried to the target: {left}; the ledger stays "
                           f"in soak until this task succeeds, so no reconcile runs target → source over them")
    return {**totals, "held_back_keys": held}


def record_cut_over(dag_id: str, run_id: str, smoke: dict, *, dry_run: bool) -> bool:
    if dry_run:
        log.info("dry run: the ledger stays in soak")
        return False
    return ds.advance_phase(dag_id, run_id, "cut_over", {"smoke_checks": smoke["checks"]})


def record_rolled_back(dag_id: str, run_id: str, smoke: dict, *, dry_run: bool) -> bool:
    """After a failed smoke check put the read path back on the source."""
    if dry_run:
        log.info("dry run: the ledger stays in soak")
        return False
    # Through cut_over, so the ledger keeps the order: soak -> cut_over -> rolled_back, in one move.
    return ds.advance_phase(dag_id, run_id, "rolled_back", {"reason": "smoke checks failed", "failed": smoke["failed"]},
                            through=("cut_over",))


def fail_after_rollback(smoke: dict) -> None:
    raise CheckFailed(f"cutover rolled back: {len(smoke['failed'])} smoke check(s) failed: {smoke['failed']}")
