"""A migration half-way through its soak, every ledger written by the engine itself: phases
advanced on the estate's target, chunks copied by the copier (one table only in part), a real
verification, and reconcile runs over injected drift. Shared by the status report's tests and
the status page's test in the Airflow UI."""

from __future__ import annotations

from migration_engine import ledger, status_report
from migration_engine.chunks import plan_chunks
from migration_engine.copier import copy_chunk
from migration_engine.generator import generate
from migration_engine.local.estate import Estate
from migration_engine.manifest import Manifest
from migration_engine.reconcile import Direction, reconcile_table
from migration_engine.verify import verify
from tests.integration.backfill_support import create_schema, target_sql

PHASES = (("preflight_passed", "preflight"), ("schema_applied", "schema_baseline"), ("backfilled", "backfill"),
          ("verified", "verify"), ("dual_write", "reconcile"))
# Table -> how many of its planned chunks get copied (None: all of them).
BACKFILL = {"wallet.users": (100, None), "wallet.platform_connections": (100, None), "wallet.activities": (500, 2)}
RECONCILED = ("wallet.users", "wallet.platform_connections")


def drift_users(estate: Estate, ids: list[int]) -> None:
    target_sql(estate, "DELETE FROM wallet.users WHERE id = ANY(%s)", (ids[:-1],))
    target_sql(estate, "UPDATE wallet.users SET did = 'did:changed' WHERE id = %s", (ids[-1],))


def reconcile(estate: Estate, manifest: Manifest, run_id: str, direction: Direction = Direction.SOURCE_TO_TARGET,
              **kwargs) -> list:
    return [reconcile_table(manifest.table(name), estate.source_endpoint("wallet"), estate.target_endpoint(), run_id=run_id,
                            direction=direction, control_schema=manifest.control_schema, grace_seconds=0, **kwargs)
            for name in RECONCILED]


def advance(estate: Estate, manifest: Manifest, phase: str, dag_id: str, run_id: str | None = None,
            details: dict | None = None) -> None:
    with estate.target_endpoint().connect(autocommit=True) as conn:
        ledger.ensure_ledger(conn, manifest.control_schema)
        assert ledger.advance(conn, manifest.control_schema, phase, dag_id, run_id or f"manual__{dag_id}", details)


def build_migration(estate: Estate, manifest: Manifest) -> dict:
    """The ledgers of a migration in ``dual_write``; returns what was copied, verified and reconciled."""
    create_schema(estate, manifest)
    sources = estate.source_endpoints()
    generate(manifest, sources, scale=1, seed=7)
    target = estate.target_endpoint()
    for phase, dag_id in PHASES[:2]:
        advance(estate, manifest, phase, dag_id)
    planned, copied = [], {}
    for name, (rows, how_many) in BACKFILL.items():
        table = manifest.table(name)
        with sources[table.service].connect(autocommit=True) as conn:
            chunks = plan_chunks(conn, table, target_rows=rows)
        planned += [c.table for c in chunks]
        results = [copy_chunk(sources[table.service], target, manifest, c, run_id="manual__backfill") for c in chunks[:how_many]]
        copied[name] = {"planned": len(chunks), "done": len(results), "rows": sum(r["rows"] for r in results)}
    with target.connect(autocommit=True) as conn:
        status_report.record_backfill_plan(conn, manifest, planned, "backfill", "manual__backfill")
    advance(estate, manifest, *PHASES[2])
    verification = verify(sources, target, manifest, tables=list(BACKFILL), state_store=False, sequences=False)
    with target.connect(autocommit=True) as conn:
        status_report.record_verification(conn, manifest, verification, "verify", "manual__verify")
    for phase, dag_id in PHASES[3:]:
        advance(estate, manifest, phase, dag_id)

    # Four reconcile runs: drift repaired, clean, drift over the repair cap (left), then repaired.
    runs = {}
    drift_users(estate, [3, 4, 5])
    target_sql(estate, "UPDATE wallet.platform_connections SET status = 'drift-test' WHERE id IN (7, 8)")
    runs["reconcile-1"] = reconcile(estate, manifest, "reconcile-1")
    runs["reconcile-2"] = reconcile(estate, manifest, "reconcile-2")
    drift_users(estate, [10, 11, 12, 13])
    runs["reconcile-3"] = reconcile(estate, manifest, "reconcile-3", cap=2)
    runs["reconcile-4"] = reconcile(estate, manifest, "reconcile-4")
    return {"copied": copied, "verification": verification, "runs": runs}
