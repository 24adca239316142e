"""Steps of the backfill DAG as plain functions over Airflow connections."""

from __future__ import annotations

import logging
from collections import Counter

from migration_engine import dag_support as ds
from migration_engine.checks import CheckFailed, fail_without_retry

log = logging.getLogger("migration.backfill")


def _chosen_tables(tables: list[str]) -> set[str] | None:
    if not tables:
        return None
    m = ds.manifest()
    known = {t.qualified for t in m.tables}
    unknown = [t for t in tables if t not in known]
    if unknown:
        with fail_without_retry():
            raise CheckFailed(f"tables {unknown!r} are not in the manifest {m.file.name}; known tables: {sorted(known)}")
    return set(tables)


def plan(dag_id: str, tables: list[str], target_rows: int | None, max_chunks: int) -> list[dict]:
    from migration_engine.chunks import plan_all

    m = ds.manifest()
    chosen = _chosen_tables(tables)
    endpoints = {s.name: ds.source_endpoint(s.name) for s in m.services}
    chunks = plan_all(m, endpoints, target_rows=target_rows, max_chunks_total=max_chunks,
                      application_name=ds.application_name(dag_id))
    planned = [c.to_dict() for c in chunks if chosen is None or c.table in chosen]
    per_table = Counter(c["table"] for c in planned)
    log.info("planned %d chunks over %d tables: %s", len(planned), len(per_table), dict(per_table))
    return planned


def copy(dag_id: str, run_id: str, chunk: dict, *, force: bool) -> dict:
    from migration_engine.chunk_ledger import backfill_progress
    from migration_engine.copier import copy_chunk

    m = ds.manifest()
    table = m.table(chunk["table"])
    result = copy_chunk(
        ds.source_endpoint(table.service), ds.target_endpoint(), m, chunk,
        force=force, run_id=run_id, application_name=ds.application_name(dag_id),
    )
    table_progress = backfill_progress(ds.target_endpoint(), m, {}).get(table.qualified, {})
    log.info("progress %s: %s chunk(s) recorded, %s rows so far", table.qualified,
             table_progress.get("chunks_done"), table_progress.get("rows"))
    return result


def progress(dag_id: str, chunks: list[dict], copied) -> dict:
    from migration_engine.chunk_ledger import backfill_progress

    planned = Counter(c["table"] for c in chunks)
    per_table = backfill_progress(ds.target_endpoint(), ds.manifest(), planned)
    modes = Counter(r["mode"] for r in copied)
    for table, entry in per_table.items():
        log.info("%-40s chunks %d/%d rows %d rate %s rows/s eta %s s", table, entry["chunks_done"], entry["chunks_total"],
                 entry["rows"], entry["rows_per_s"], entry["eta_s"])
    return {
        "tables": len(per_table),
        "rows": sum(e["rows"] for e in per_table.values()),
        "chunks_by_mode": dict(modes),
        "per_table": per_table,
    }


def post_load_constraints(dag_id: str) -> list[str]:
    from migration_engine.schema_sql import apply_step

    m = ds.manifest()
    step = next(s for s in m.schema_steps if s.after_backfill)
    with ds.target_connection(dag_id) as conn:
        applied = apply_step(lambda service: conn, m, step.name, "target")
    log.info("post-load step %s: %d statement(s) applied", step.name, len(applied))
    return applied


def full_schema_compare(dag_id: str) -> dict:
    """After the post-load step: every table matches its source, constraints included."""
    from migration_engine.schema_baseline import check_schema_matches_source

    m = ds.manifest()
    digests = {}
    app = ds.application_name(dag_id)
    with fail_without_retry(), ds.target_connection(dag_id) as target:
        for service in m.services:
            with ds.source_endpoint(service.name).connect(application_name=app, autocommit=True) as source:
                digests[service.name] = check_schema_matches_source(source, target, m, service.name, deferred=False)
    return digests
