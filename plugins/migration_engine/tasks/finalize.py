"""Steps of the finalize DAG as plain functions over Airflow connections: the cutover-soak gate, the
evidence for the approval, the final backup and the rollback retention window."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from migration_engine import dag_support as ds
from migration_engine import ledger, source_access
from migration_engine.checks import CheckFailed, check_non_negative
from migration_engine.tasks import shared

log = logging.getLogger("migration.finalize")


def wait_for_cutover_soak(dag_id: str, phase: dict, min_cutover_hours: float, *, wait_left_hours: float) -> dict | None:
    """For a rescheduling sensor: the time cut over once it reaches ``min_cutover_hours``; a re-run after
    finalize passes at once."""
    if phase["phase"] == "finalized":
        return {"already_finalized": True, "hours": 0.0, "required_hours": min_cutover_hours}
    return shared.wait_for_time_in_phase(dag_id, "cut_over", min_cutover_hours, wait_left_hours=wait_left_hours)


def gather_evidence(dag_id: str, soak: dict, streak: dict, final: dict, *, retention_days: int, dry_run: bool) -> dict:
    """What the approval shows: the gates' results, the retention to record and what is left to revoke."""
    from migration_engine import evidence

    writable = app_writable_tables(dag_id)
    summary = evidence.finalize_summary(
        soak=soak, streak=streak, final=final, writable=writable, retention_days=retention_days, dry_run=dry_run)
    return {"soak": soak, "streak": streak, "final": final, "app_writable_tables": writable, "summary": summary}


def app_writable_tables(dag_id: str) -> dict[str, int]:
    """Per service, the source tables its app role can still write: what finalize would revoke."""
    conns = ds.Connections(dag_id)
    m = ds.manifest()
    counts = {}
    for service in m.services:
        with conns.source(service.name, autocommit=False) as conn:
            counts[service.name] = source_access.app_write_grants(conn, service)
    return counts


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


def record_retention(dag_id: str, run_id: str, retention_days: int, *, dry_run: bool) -> dict | None:
    if dry_run:
        log.info("dry run: retention of %s days not recorded", retention_days)
        return None
    conns = ds.Connections(dag_id)
    check_non_negative("retention_days", retention_days, maximum=3650)
    if retention_days < 7:
        raise CheckFailed(f"retention_days must be at least 7 (runbook section 11), got {retention_days}")
    until = datetime.now(UTC) + timedelta(days=retention_days)
    fact = {"retention_days": retention_days, "keep_source_until": until.isoformat()}
    with conns.target() as conn:
        ledger.record_fact(conn, ds.manifest().control_schema, "rollback_retention", fact, dag_id, run_id)
    return fact


def record_finalized(dag_id: str, run_id: str, revoked: dict, retention: dict | None, *, dry_run: bool) -> bool:
    if dry_run:
        log.info("dry run: the ledger stays at cut_over")
        return False
    return ds.advance_phase(dag_id, run_id, "finalized", {"revoked": revoked, "retention": retention})
