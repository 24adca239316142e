"""Steps of the rollback DAG as plain functions over Airflow connections: its gates, the evidence for the
approval, the sources' writes restored and caught up, and the reverse drift reported and repaired."""

from __future__ import annotations

import logging
from datetime import datetime

from migration_engine import dag_support as ds
from migration_engine import ledger
from migration_engine.checks import CheckFailed, rollback_window_gate
from migration_engine.reconcile.engine import Direction
from migration_engine.tasks import shared

log = logging.getLogger("migration.rollback")


def check_repair_word(repair_source: str | None, repair_word: str) -> None:
    if repair_source not in (None, "", repair_word):
        raise CheckFailed(f"repair_source must be empty or exactly {repair_word!r}; nothing was changed")


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


def gather_evidence(dag_id: str, phase: dict) -> dict:
    """What the approval shows: the phase the rollback starts from and the flags now."""
    from migration_engine import evidence

    flags = shared.read_path_flags(dag_id)
    return {"phase": phase, "flags": flags, "summary": evidence.rollback_summary(phase=phase, flags=flags)}


def restore_app_writes(dag_id: str, run_id: str, statements: list, dry_run: bool) -> dict:
    """Rollback: the apps' writes back on the sources, when the run started after finalize revoked them."""
    started_in = ds.run_start()["phase"]
    if started_in != "finalized":
        log.info("the rollback started in %s: finalize revoked nothing, nothing to restore", started_in)
        return {"restored": False}
    return {"restored": True, **shared.set_app_writes(True, dag_id, run_id, statements, dry_run)}


def catch_source_up(dag_id: str, run_id: str, *, dry_run: bool, cap: int) -> dict | None:
    """Rollback from ``finalized``: the target's writes since the last hourly reconcile onto the sources
    (target → source) while the target is still the apps' primary, before the read path flips back."""
    started_in = ds.run_start()["phase"]
    if started_in != "finalized":
        log.info("the rollback started in %s: dual-write kept the sources level, no catch-up before the flip", started_in)
        return None
    return shared.reconcile_all(dag_id, run_id, Direction.TARGET_TO_SOURCE, dry_run=dry_run, cap=cap, max_unrepaired=0)


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


def record_rolled_back(dag_id: str, run_id: str, flags: dict, *, dry_run: bool) -> bool:
    if dry_run:
        log.info("dry run: the ledger stays where it is")
        return False
    return ds.advance_phase(dag_id, run_id, "rolled_back", {"flags": flags["flags"]})


def validate_source(dag_id: str) -> dict:
    result = shared.smoke_checks(dag_id, layout="source")
    if not result["ok"]:
        raise CheckFailed(f"source validation failed: {result['failed']}")
    return result


def report_reverse_drift(dag_id: str, run_id: str, *, cap: int) -> dict:
    """What a target → source pass would repair, repairing nothing."""
    return shared.reconcile_all(dag_id, run_id, Direction.TARGET_TO_SOURCE, dry_run=True, cap=cap, max_unrepaired=0)


def repair_source_from_target(dag_id: str, run_id: str, *, dry_run: bool, cap: int) -> dict:
    """Target → source, repairing only what the failed cutover window explains."""
    return shared.reconcile_all(dag_id, run_id, Direction.TARGET_TO_SOURCE, dry_run=dry_run, cap=cap,
                                max_unrepaired=0, cutover_window=read_cutover_window(dag_id))


def skip_repair(repair_word: str) -> None:
    log.info("repair_source was not %s: the report is the result; nothing was written to the source", repair_word)
