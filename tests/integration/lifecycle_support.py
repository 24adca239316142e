"""Shared set-up for the phase-D/E/F tests: an estate brought to `verified` with
the engine once per module and back to a phase before each test that needs one,
and helpers that read the ledger, the flags and whole databases."""

from __future__ import annotations

import shutil
from uuid import uuid4

import yaml
from psycopg import sql

from migration_engine import ledger, read_path, source_access
from migration_engine.canonical import hash_sum, pin_output_settings
from migration_engine.chunks import plan_all
from migration_engine.copier import copy_chunk
from migration_engine.manifest import load_manifest
from migration_engine.preflight import freeze_fingerprint
from migration_engine.reconcile import drift_ledger
from migration_engine.reconcile.engine import Direction, TableJob, reconcile_tables
from migration_engine.schema_sql import apply_schema, apply_step
from migration_engine.sequences import sync_sequences
from tests.integration.backfill_support import fill_sources

CONTROL = "migration_control"


def target(estate):
    return estate.target_endpoint().connect(autocommit=True)


def bring_to_schema_applied(estate, manifest, *, scale: float, seed: int) -> dict:
    """Layout and data on the sources, the target's schema before its post-load constraints,
    frozen fingerprints; the ledger at `schema_applied`, ready for the backfill DAG."""
    endpoints = _sources_and_target_schema(estate, manifest, scale=scale, seed=seed)
    _freeze_fingerprints(estate, manifest, endpoints)
    set_phase(estate, "preflight_passed", "schema_applied")
    return endpoints


def bring_to_verified(estate, manifest, *, scale: float = 0.2, seed: int = 7) -> dict:
    """Layout, data, copy, constraints, frozen fingerprints, sequences; the ledger at `verified`."""
    endpoints = _sources_and_target_schema(estate, manifest, scale=scale, seed=seed)
    for chunk in plan_all(manifest, endpoints):
        copy_chunk(endpoints[manifest.table(chunk.table).service], estate.target_endpoint(), manifest, chunk)
    with target(estate) as conn:
        apply_step(conn, manifest, "post_load_constraints", "target")
    _freeze_fingerprints(estate, manifest, endpoints)
    sync_sequences(endpoints, estate.target_endpoint(), manifest)
    set_phase(estate, "preflight_passed", "schema_applied", "backfilled", "verified")
    return endpoints


def _sources_and_target_schema(estate, manifest, *, scale: float, seed: int) -> dict:
    endpoints = fill_sources(estate, manifest, scale=scale, seed=seed)
    with target(estate) as conn:
        apply_schema(conn, manifest, post_load=False)
    return endpoints


def _freeze_fingerprints(estate, manifest, endpoints: dict) -> None:
    with target(estate) as conn:
        ledger.ensure_ledger(conn, CONTROL)
        for service in manifest.services:
            with endpoints[service.name].connect(autocommit=True) as src:
                freeze_fingerprint(src, conn, manifest, service.name, "test", "setup")


def reconcile_every_table(estate, manifest, run_id: str, direction=Direction.SOURCE_TO_TARGET, **kwargs) -> dict:
    """One finished run over every table, one pass as the reconcile DAG's table task makes it, recorded as the
    DAG records it; the results by table."""
    jobs = [TableJob(table, estate.source_endpoint(table.service)) for table in manifest.tables]
    outcomes = reconcile_tables(jobs, estate.target_endpoint(), run_id=run_id, direction=direction,
                                control_schema=CONTROL, grace_seconds=0, **kwargs)
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
    results = {table.qualified: outcome for table, outcome in zip(manifest.tables, outcomes, strict=True)}
    with target(estate) as conn:
        drift_ledger.record_outcome(conn, CONTROL, run_id, Direction(direction).value, results)
    return results


def reconcile_clean(estate, manifest, run_id: str, direction=Direction.SOURCE_TO_TARGET) -> None:
    for result in reconcile_every_table(estate, manifest, run_id, direction).values():
        assert result.unrepaired == 0, result.summary()


def manifest_with_smoke_check(manifest, tmp_path, service: str, name: str, statement: str):
    """``manifest`` with one more smoke check (``name`` for ``service``); the new manifest file's path."""
    smoke = tmp_path / "smoke"
    shutil.copytree(manifest.smoke_sql, smoke)
    (smoke / service / name).write_text(statement + "\n")
    raw = yaml.safe_load(manifest.file.read_text())
    raw["smoke_sql"] = str(smoke)
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert load_manifest(path).smoke_sql == smoke
    return path


def set_phase(estate, *phases: str) -> None:
    with target(estate) as conn:
        for phase in phases:
            ledger.advance(conn, CONTROL, phase, "test", "setup")


def phase(estate) -> str | None:
    with target(estate) as conn:
        return ledger.current_phase(conn, CONTROL)


def move_flags(estate, manifest, statements) -> None:
    """A flag change as a DAG makes it: fenced by the ledger epoch it reads first."""
    with target(estate) as conn:
        epoch = ledger.current_epoch(conn, CONTROL).number
        read_path.apply(conn, statements, dry_run=False, log=lambda _line: None, control_schema=CONTROL, epoch=epoch)


def assert_the_app_reads_but_cannot_write(estate, service: str = "wallet") -> None:
    """What finalize leaves on a source: the app's INSERT refused, its reads still served."""
    import psycopg
    import pytest

    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with psycopg.connect(estate.app_url(service)) as conn:
            conn.execute("INSERT INTO public.activities (user_id, type, description) VALUES (1, 't', 'd')")
    with psycopg.connect(estate.app_url(service)) as conn:
        assert conn.execute("SELECT count(*) FROM public.activities").fetchone()[0] > 0


def flags(estate, manifest) -> dict:
    with target(estate) as conn:
        return read_path.read_flags(conn, manifest)


def snapshot(estate, manifest) -> dict:
    """Catalog and data of every schema on both servers: rows and an order-independent hash per table, and grants."""
    taken = {}
    endpoints = [("target", estate.target_endpoint())] + [(f"source {s.name}", estate.source_endpoint(s.name)) for s in manifest.services]
    for side, endpoint in endpoints:
        with endpoint.connect() as conn:
            tables = conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
            ).fetchall()
            pin_output_settings(conn)
            for schema, table in tables:
                columns = [r[0] for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                    "ORDER BY ordinal_position", (schema, table)).fetchall()]
                digest = conn.execute(
                    sql.SQL("SELECT count(*), {} FROM {} AS t").format(hash_sum(columns), sql.Identifier(schema, table))
                ).fetchone()
                taken[(side, schema, table)] = (columns, digest)
            taken[(side, "grants")] = conn.execute(
                "SELECT grantee, table_schema, table_name, privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee NOT IN ('postgres', 'migrator') ORDER BY 1, 2, 3, 4").fetchall()
    return taken


def failed(result, task_id: str, *phrases: str) -> None:
    assert result.returncode != 0, result.output[-3000:]
    assert result.state_of(task_id) == "failed", result.task_states
    for phrase in phrases:
        assert phrase in result.output, f"{phrase!r} not in the output of {task_id}"


def start_soak(estate, manifest, *, clean_runs: int = 0):
    """From `verified`: dual-write on with the read path on the source, ``clean_runs`` clean reconciles
    (the gates' streak), the ledger at soak."""
    set_phase(estate, "dual_write")
    move_flags(estate, manifest, read_path.dual_write_statements(manifest, True, "test/setup"))
    for _ in range(clean_runs):
        # Run ids of their own: the streak must not hinge on which runs an earlier test recorded.
        reconcile_clean(estate, manifest, f"soak-{uuid4().hex[:8]}")
    set_phase(estate, "soak")
    return estate


def return_to_verified(estate, manifest) -> None:
    """An estate ``bring_to_verified`` set up, back at `verified` from whatever phase a test left it in:
    the apps' writes restored on the sources, the phase ledger, its facts and the read-path flags
    started anew (the order forbids moving back, so they are dropped), the fingerprints frozen again,
    the target level with the sources through a clean reconcile and its sequences carried past
    theirs. The chunk ledger and the recorded reconcile runs stay."""
    for service in manifest.services:
        with estate.source_endpoint(service.name).connect(autocommit=True) as conn:
            source_access.set_app_writes(conn, service, allowed=True, dry_run=False, log=lambda _line: None)
    with target(estate) as conn:
        for table in ("phase_transitions", "fence", "facts", "allowed_transitions", "read_path"):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(CONTROL, table)))
    _freeze_fingerprints(estate, manifest, estate.source_endpoints())
    set_phase(estate, "preflight_passed", "schema_applied", "backfilled", "verified")
    reconcile_clean(estate, manifest, f"level-{uuid4().hex[:8]}")
    sync_sequences(estate.source_endpoints(), estate.target_endpoint(), manifest)
