"""Steps of the backfill DAG as plain functions over Airflow connections."""

from __future__ import annotations

import logging
from collections import Counter

from migration_engine import dag_support as ds
from migration_engine.checks import CheckFailed
from migration_engine.chunks import DEFAULT_TARGET_BYTES
from migration_engine.pacing import probe_on_server_ms
from migration_engine.tasks import shared
from migration_engine.tasks.shared import group_label, pack, source_table_bytes

log = logging.getLogger("migration.backfill")

# Whole tables share a copy task up to a chunk's worth of bytes: each task instance costs Airflow a second
# or more to start, longer than a table of a few tens of MB takes to copy.
COPY_TASK_BYTES = DEFAULT_TARGET_BYTES


def _chosen_tables(tables: list[str]) -> set[str] | None:
    if not tables:
        return None
    m = ds.manifest()
    known = {t.qualified for t in m.tables}
    unknown = [t for t in tables if t not in known]
    if unknown:
        raise CheckFailed(f"tables {unknown!r} are not in the manifest {m.file.name}; known tables: {sorted(known)}")
    return set(tables)


def plan(dag_id: str, run_id: str, tables: list[str], target_rows: int | None, max_tasks: int) -> list[dict]:
    """The mapped tasks' work: one task per chunk of a split table, small whole tables packed together."""
    from migration_engine.chunks import plan_all
    from migration_engine.status_report import record_backfill_plan

    conns = ds.Connections(dag_id)
    m = ds.manifest()
    chosen = _chosen_tables(tables)
    chunks = plan_all(m, conns.source_endpoints(), target_rows=target_rows, max_chunks_total=max_tasks)
    planned = [c for c in chunks if chosen is None or c.table in chosen]
    whole = [c for c in planned if c.lower is None and c.upper is None]
    units = pack_tasks(planned, source_table_bytes([c.table for c in whole], conns))
    per_table = Counter(c.table for c in planned)
    log.info("planned %d chunks over %d tables in %d tasks: %s", len(planned), len(per_table), len(units), dict(per_table))
    # Recorded now, so the status report shows chunk totals while the copies run.
    with conns.target() as conn:
        record_backfill_plan(conn, m, [c.table for c in planned], dag_id, run_id)
    return units


def pack_tasks(chunks, whole_table_bytes: dict[str, int], task_bytes: int = COPY_TASK_BYTES) -> list[dict]:
    """Tasks of the mapped copy, in plan order (parents first).

    A chunk of a split table is a task of its own; tables planned as one whole
    chunk are packed together. Each chunk still commits with its own ledger row,
    so a packed task killed half-way resumes at its first unrecorded chunk.
    """
    def size_of(chunk):
        return whole_table_bytes.get(chunk.table) if chunk.lower is None and chunk.upper is None else None

    return [{"label": _task_label(group), "chunks": [c.to_dict() for c in group]}
            for group in pack(chunks, size_of, task_bytes)]


def _task_label(group) -> str:
    return group[0].label if len(group) == 1 else group_label([c.table for c in group])


def _services(tables: list[str]) -> list[str]:
    m = ds.manifest()
    chosen = _chosen_tables(tables)
    return sorted({t.service for t in m.tables if chosen is None or t.qualified in chosen})


def hold_snapshots(dag_id: str, run_id: str, tables: list[str], max_hold_s: float) -> dict:
    """Per source database of the chosen tables, adopt a snapshot some run still holds alive, else start a holder.

    A cleared task, or a new run after one that died before its release, keeps reading at the snapshot
    its chunks were copied at; snapshots nobody adopted are released."""
    from migration_engine import snapshots
    from migration_engine.chunk_ledger import ensure_chunk_ledger
    from migration_engine.resources import artifact_folder

    conns = ds.Connections(dag_id)
    m = ds.manifest()
    started = {}
    with conns.target() as conn:
        ensure_chunk_ledger(conn, m)
        for service in _services(tables):
            held = snapshots.held_snapshot(conn, m.control_schema, service)
            if held:
                with conns.source(service) as source:
                    alive = snapshots.holder_alive(source, held["backend_pid"])
                if alive:
                    if held["run_id"] != run_id:
                        snapshots.publish(conn, m.control_schema, run_id, service, state="holding", holder=held["holder"],
                                          snapshot=held)
                    log.info("%s source: snapshot %s (taken by run %s) still held by %s; adopted", service,
                             held["snapshot_id"], held["run_id"], held["holder"])
                    started[service] = held["holder"]
                    continue
            log_file = artifact_folder(dag_id, run_id) / f"snapshot-holder-{service}.log"
            pid = snapshots.start_holder(conns.source_endpoint(service), conns.target_endpoint, control_schema=m.control_schema,
                                         run_id=run_id, service=service, application_name=f"{conns.application_name}-snapshot-holder",
                                         log_file=log_file, max_hold_s=max_hold_s)
            log.info("%s source: snapshot holder started (pid %d, log %s)", service, pid, log_file)
            started[service] = pid
        # Adopted ones now have this run's row too: only what no one adopted ends.
        snapshots.release_other_runs(conn, m.control_schema, run_id)
    return started


def snapshots_published(dag_id: str, run_id: str, tables: list[str]) -> dict | None:
    """Every chosen source's snapshot, once its holder has published it and still holds it; None while waiting."""
    from migration_engine import snapshots

    conns = ds.Connections(dag_id)
    m = ds.manifest()
    with conns.target() as conn:
        rows = {row["service"]: row for row in snapshots.run_snapshots(conn, m.control_schema, run_id)}
    published = {}
    for service in _services(tables):
        row = rows.get(service)
        if row is None:
            log.info("%s source: waiting for its snapshot holder to publish", service)
            return None
        if row["state"] != "holding":
            raise CheckFailed(f"{service} source: the snapshot holder {row['holder']} ended ({row['state']}): "
                              f"{row['error'] or 'no cause recorded'}. Fix the cause, then clear hold_source_snapshots")
        snapshot = snapshots.SourceSnapshot(service, row["snapshot_id"], row["lsn"], row["xmin_horizon"], row["backend_pid"],
                                            row["holder"], run_id)
        with conns.source(service) as source:
            if not snapshots.holder_alive(source, snapshot.backend_pid):
                raise snapshots.SnapshotLost(f"{snapshot.describe()}: its session on the source is gone; "
                                             "clear hold_source_snapshots to take a new one")
        log.info("%s", snapshot.describe())
        published[service] = snapshot.to_dict()
    return published


def release_snapshots(dag_id: str, run_id: str) -> list[dict]:
    """End the run's snapshots (their holders leave within seconds), so vacuum on the sources can clean up again."""
    from migration_engine import snapshots

    conns = ds.Connections(dag_id)
    with conns.target() as conn:
        snapshots.release(conn, ds.manifest().control_schema, run_id)
        held = snapshots.run_snapshots(conn, ds.manifest().control_schema, run_id)
    for row in held:
        log.info("%s source: snapshot %s %s after %.1f s", row["service"], row["snapshot_id"], row["state"],
                 row["held_seconds"] or 0.0)
    return [{"service": r["service"], "state": r["state"], "held_seconds": round(r["held_seconds"] or 0.0, 1)} for r in held]


def source_baselines(dag_id: str, tables: list[str], max_increase: float | None) -> dict[str, dict] | None:
    """Per source database of the chosen tables, the probe's idle latency and the budget over it
    (None with no ``max_increase``: load-aware pacing off). Measured before any chunk streams."""
    budgets = shared.latency_budgets(dag_id, _services(tables), max_increase, probe=probe_on_server_ms)
    return budgets and budgets["sources"]


def copy(dag_id: str, run_id: str, task: dict, *, force: bool, max_mb_per_s: float | None, snapshots: dict,
         phase: str, load_budgets: dict[str, dict] | None = None) -> dict:
    """Copy a task's chunks in turn at their source's snapshot; each is exactly once on its own (copy and ledger
    row in one transaction), its stream held to ``max_mb_per_s`` when given.

    Before the post-load constraints (phase ``schema_applied``) a chunk read at an older snapshot (a run whose
    holder died) is copied again at this one, so every table of a source agrees on one instant."""
    from migration_engine.chunk_ledger import backfill_progress
    from migration_engine.copier import copy_chunk
    from migration_engine.pacing import LoadBudget
    from migration_engine.snapshots import SourceSnapshot

    conns = ds.Connections(dag_id)
    m = ds.manifest()
    target = conns.target_endpoint
    results = []
    pacers = {}
    for chunk in task["chunks"]:
        table = m.table(chunk["table"])
        results.append(copy_chunk(
            conns.source_endpoint(table.service), target, m, chunk,
            force=force, run_id=run_id, max_mb_per_s=max_mb_per_s,
            load_budget=LoadBudget(**load_budgets[table.service]) if load_budgets else None,
            snapshot=SourceSnapshot.from_dict(snapshots[table.service]),
            recopy_other_snapshots=phase == "schema_applied", pacers=pacers,
        ))
    for table, entry in backfill_progress(target, m, {}).items():
        if table in {c["table"] for c in task["chunks"]}:
            log.info("progress %s: %s chunk(s) recorded, %s rows so far", table, entry["chunks_done"], entry["rows"])
    return {"label": task["label"], "chunks": results}


def progress(dag_id: str, tasks: list[dict], copied) -> dict:
    from migration_engine.chunk_ledger import backfill_progress

    conns = ds.Connections(dag_id)
    planned = Counter(c["table"] for t in tasks for c in t["chunks"])
    per_table = backfill_progress(conns.target_endpoint, ds.manifest(), planned)
    modes = Counter(r["mode"] for t in ds.mapped_results(copied) for r in t["chunks"])
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
    """Unique and foreign keys once the data is in. A foreign key the copied rows break fails
    without retry (a retry meets the same rows), naming the tables to copy again."""
    import psycopg

    from migration_engine.schema_sql import apply_step

    conns = ds.Connections(dag_id)
    m = ds.manifest()
    step = next(s for s in m.schema_steps if s.after_backfill)
    with conns.target() as conn:
        try:
            applied = apply_step(conn, m, step.name, "target")
        except psycopg.errors.ForeignKeyViolation as exc:
            raise CheckFailed(_late_parents(conn, m, exc)) from None
    log.info("post-load step %s: %d statement(s) applied", step.name, len(applied))
    return applied


def _late_parents(conn, m, exc) -> str:
    """What a foreign-key refusal after the copy means, and the re-run that fixes it."""
    referenced = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.confrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_class t ON t.oid = k.conrelid "
        "JOIN pg_namespace tn ON tn.oid = t.relnamespace WHERE k.conname = %s AND tn.nspname = %s AND t.relname = %s",
        (exc.diag.constraint_name, exc.diag.schema_name, exc.diag.table_name),
    ).fetchone()
    by_target = {t.target_ident: t.qualified for t in m.tables}
    child = by_target.get((exc.diag.schema_name, exc.diag.table_name), f"{exc.diag.schema_name}.{exc.diag.table_name}")
    parent = by_target.get(tuple(referenced), ".".join(referenced)) if referenced else "its referenced table"
    return (
        f"foreign key {exc.diag.constraint_name} on {child}: rows copied into {child} reference {parent} rows the copy "
        f"of {parent} does not have. Chunks of one source read at one snapshot cannot do this, so the two tables were "
        f"read at different instants (a forced re-copy of one of them after the load). Trigger backfill with "
        f"force on and tables [{parent}]: it brings the missing rows and applies the constraints again."
    )


def full_schema_compare(dag_id: str) -> dict:
    """After the post-load step: every table matches its source, constraints included."""
    from migration_engine.catalog import check_schema_matches_source

    conns = ds.Connections(dag_id)
    m = ds.manifest()
    digests = {}
    with conns.target() as target:
        for service in m.services:
            with conns.source(service.name) as source:
                digests[service.name] = check_schema_matches_source(source, target, m, service.name, deferred=False)
    return digests
