"""Steps of the preflight DAG as plain functions over Airflow connections: each reaches the databases
and hands them to the checks and records of the engine's ``preflight`` module."""

from __future__ import annotations

import logging

from migration_engine import dag_support as ds

log = logging.getLogger("migration.preflight")


def check_source(dag_id: str, service: str) -> dict:
    from migration_engine.preflight import check_manifest_tables, probe, snapshot_hold_estimate

    conns = ds.Connections(dag_id)
    m = ds.manifest()
    report = probe(conns.source_endpoint(service))
    with conns.source(service, autocommit=False) as conn:
        report["manifest_tables"] = check_manifest_tables(conn, m, service)
        report["snapshot_hold"] = snapshot_hold_estimate(conn, m, service)
    return report


def check_target_direct(dag_id: str) -> dict:
    from migration_engine.preflight import probe

    return probe(ds.Connections(dag_id).target_endpoint, need_create_schema=True)


def check_target_pooler(dag_id: str) -> dict:
    from migration_engine.preflight import probe

    return probe(ds.Connections(dag_id).pooler_endpoint)


def _freshness_window(max_age_hours: float | None) -> float:
    """The run's *max_age_hours*, else the manifest's."""
    return max_age_hours if max_age_hours is not None else ds.manifest().state_store.max_age_hours


def check_state_store(dag_id: str, service: str, max_age_hours: float | None) -> list[dict]:
    from migration_engine.preflight import check_state_store

    conns = ds.Connections(dag_id)
    with conns.source(service, autocommit=False) as conn:
        return check_state_store(conn, ds.manifest(), service, float(_freshness_window(max_age_hours)))


def prepare_ledger(dag_id: str) -> None:
    from migration_engine import ledger

    with ds.Connections(dag_id).target(autocommit=False) as conn:
        ledger.ensure_ledger(conn, ds.manifest().control_schema)


def freeze_schema(dag_id: str, run_id: str, service: str) -> dict:
    from migration_engine.preflight import freeze_fingerprint

    conns = ds.Connections(dag_id)
    with conns.source(service, autocommit=False) as source, conns.target(autocommit=False) as target:
        return freeze_fingerprint(source, target, ds.manifest(), service, dag_id, run_id)


def back_up_source(dag_id: str, run_id: str, service: str, params: dict) -> dict:
    """A verified backup of the source, reused while one exists for the same frozen fingerprint."""
    from pathlib import Path

    from airflow.sdk import Variable

    from migration_engine import backup, ledger
    from migration_engine.preflight import BACKUP_FACT, frozen_fingerprint

    conns = ds.Connections(dag_id)
    m = ds.manifest()
    root = Path(params["backup_dir"] or Variable.get("migration_backup_dir", default=None) or backup.default_backup_root())
    expected = [t.source_ident for t in m.service(service).tables]
    key = BACKUP_FACT.format(service=service)
    # No target session stays open (idle in transaction) while pg_dump runs.
    with conns.target(autocommit=False) as target:
        fingerprint, _ = frozen_fingerprint(target, m, service)
        previous = ledger.read_fact(target, m.control_schema, key)
    record = backup.back_up(
        conns.source_endpoint(service), service, root / m.migration, fingerprint.sha256, expected,
        jobs=params["backup_jobs"], previous=previous.value if previous else None, fresh=params["fresh_backup"],
    )
    with conns.target(autocommit=False) as target:
        ledger.record_fact(target, m.control_schema, key, record.as_dict(), dag_id, run_id)
    return record.as_dict()


def record_preflight_passed(dag_id: str, run_id: str, max_age_hours: float | None, *, endpoints: list,
                            state_stores: dict, fingerprints: list, backups: list) -> str:
    """The run's summary written as artifacts and recorded in the ledger, then the ledger moved."""
    from migration_engine import ledger
    from migration_engine.preflight import SUMMARY_FACT, summary_text, write_artifacts
    from migration_engine.resources import artifact_folder

    conns = ds.Connections(dag_id)
    m = ds.manifest()
    summary = {
        "migration": m.migration,
        "run_id": run_id,
        "endpoints": endpoints,
        "max_age_hours": _freshness_window(max_age_hours),
        "state_store": state_stores,
        "fingerprints": fingerprints,
        "backups": backups,
    }
    json_path, text_path = write_artifacts(artifact_folder(dag_id, run_id), "preflight_summary", summary)
    with conns.target(autocommit=False) as conn:
        ledger.record_fact(conn, m.control_schema, SUMMARY_FACT, summary, dag_id, run_id)
    moved = ds.advance_phase(dag_id, run_id, "preflight_passed", {
        "fingerprints": {f["service"]: f["sha256"] for f in fingerprints}, "summary": str(json_path)})
    log.info("%s", summary_text(summary))
    log.info("summary written to %s and %s; ledger %s", text_path, json_path,
             "moved to preflight_passed" if moved else "already at preflight_passed")
    return str(text_path)
