"""The cutover's drain: the old primary's last writes, carried to the new one.

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

from migration_engine import dag_support as ds
from migration_engine.reconcile import scan
from migration_engine.reconcile.engine import Direction, TableJob, reconcile_tables
from migration_engine.tasks.reconcile import left_unrepaired, settle, summaries_of

log = logging.getLogger("migration.drain")


def source_horizons(dag_id: str) -> dict[str, int]:
    """Each source database's xmin horizon now: every row version written later carries an xid at or above it."""
    conns = ds.Connections(dag_id)
    horizons = {}
    for service in ds.manifest().services:
        with conns.source(service.name) as conn:
            horizons[service.name] = scan.current_horizon(conn)
    return horizons


def target_horizon(dag_id: str) -> int:
    conns = ds.Connections(dag_id)
    with conns.target() as conn:
        return scan.current_horizon(conn)


def drain_old_primary(dag_id: str, run_id: str, *, source_horizons: dict[str, int], flip_horizon: int,
                      wait_seconds: float, cap: int, dry_run: bool) -> dict:
    """Wait for the apps to see the flip, then carry the source's writes since ``source_horizons`` that
    the target has not overwritten since ``flip_horizon``; returns the totals and the keys left alone."""
    conns = ds.Connections(dag_id)
    if dry_run:
        log.info("dry run: nothing flipped, so there is nothing to drain")
        return {"dry_run": True}
    log.info("waiting %ss for every app to see the flipped read path", wait_seconds)
    time.sleep(wait_seconds)
    m = ds.manifest()
    target = conns.target_endpoint
    epoch = ds.run_epoch(dag_id)

    def drain_some(names: list[str]) -> dict[str, dict]:
        jobs = [TableJob(m.table(name), conns.source_endpoint(m.table(name).service),
                         horizon=source_horizons[m.table(name).service]) for name in names]
        return summaries_of(dict(zip(names, reconcile_tables(
            jobs, target, run_id=f"{dag_id}/{run_id}/drain", direction=Direction.SOURCE_TO_TARGET,
            control_schema=m.control_schema, cap=cap, repair_unexplained=False, target_horizon=flip_horizon,
            epoch=epoch,
        ), strict=True)))

    results = settle(list(drain_some([t.qualified for t in m.tables]).values()), drain_some, m.tables)
    totals = {key: sum(r[key] for r in results) for key in ("drifted", "repaired", "in_flight", "held_back")}
    left = {r["table"]: {"unrepaired": left_unrepaired(r), "refused_by": r["refused_by"], "cap_exceeded": r["cap_exceeded"]}
            for r in results if left_unrepaired(r) or r["cap_exceeded"]}
    held = {r["table"]: r["unexplained_keys"] for r in results if r["held_back"]}
    log.info("drained the old primary: %s; left to the target's way: %s", totals, held)
    if left:
        # Retried: a refused child usually lands once its parent has.
        raise RuntimeError(f"rows the old primary wrote could not be carried to the target: {left}; the ledger stays "
                           f"in soak until this task succeeds, so no reconcile runs target → source over them")
    return {**totals, "held_back_keys": held}
