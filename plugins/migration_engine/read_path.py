"""The read-path flag store the apps read (runbook 5, phases D and E).

One row per service in ``<control_schema>.read_path`` of the target:
``primary_side`` ('source' or 'target') says where the app reads, ``dual_write``
whether it writes to both. Every change goes through templated SQL from
``include/sql/cutover/`` and is idempotent: setting a value a row already has
changes nothing, not even its timestamp.
"""

from __future__ import annotations

import psycopg

from migration_engine import catalog, ledger, sqlfiles
from migration_engine.manifest import Manifest
from migration_engine.sqlfiles import PlannedStatement

SIDES = ("source", "target")
FLAG_FILES = ("cutover/set_read_path.sql", "cutover/set_dual_write.sql")


def _statement(manifest: Manifest, name: str, **params) -> PlannedStatement:
    return PlannedStatement(f"cutover/{name}.sql", {"control_schema": manifest.control_schema}, params)


def _services(manifest: Manifest, services) -> list[str]:
    names = [s.name for s in manifest.services]
    chosen = list(services) if services else names
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise ValueError(f"unknown service(s) {unknown}; the manifest has {names}")
    return chosen


def ensure_statements(manifest: Manifest, changed_by: str) -> list[PlannedStatement]:
    return [
        _statement(manifest, "create_read_path_table"),
        _statement(manifest, "seed_read_path", services=_services(manifest, None), changed_by=changed_by),
    ]


def read_path_statements(manifest: Manifest, side: str, changed_by: str, services=None) -> list[PlannedStatement]:
    if side not in SIDES:
        raise ValueError(f"read path side must be one of {SIDES}, not {side!r}")
    return [
        *ensure_statements(manifest, changed_by),
        _statement(manifest, "set_read_path", side=side, services=_services(manifest, services), changed_by=changed_by),
    ]


def dual_write_statements(manifest: Manifest, enabled: bool, changed_by: str, services=None) -> list[PlannedStatement]:
    return [
        *ensure_statements(manifest, changed_by),
        _statement(manifest, "set_dual_write", enabled=bool(enabled), services=_services(manifest, services), changed_by=changed_by),
    ]


def apply(conn: psycopg.Connection, statements: list[PlannedStatement], *, dry_run: bool, log,
          control_schema: str, epoch: int) -> int:
    """Run the statements in one transaction fenced by the ledger ``epoch`` the calling run
    started under (``ledger.StaleEpoch``, nothing changed, once the ledger has moved), or
    only log them when ``dry_run``.

    Statements not yet rendered are rendered here by the engine's environment; a task
    passes them rendered by Airflow. Returns the number of flag rows changed (0 on a
    dry run or a repeat).
    """
    planned = [s if s.text is not None else s.rendered() for s in statements]
    if dry_run:
        for statement in planned:
            log("DRY RUN, not executed:\n" + statement.display())
        return 0
    changed = 0
    with ledger.fenced(conn, control_schema, epoch, "changing the read-path flags"):
        for statement in planned:
            log("executing:\n" + statement.display())
            cursor = conn.execute(statement.statement, statement.params or None)
            if statement.name in FLAG_FILES:
                changed += cursor.rowcount
    return changed


def read_flags(conn: psycopg.Connection, manifest: Manifest) -> dict[str, dict]:
    """The flags as the apps see them; empty when the flag store does not exist yet."""
    if not catalog.table_exists(conn, (manifest.control_schema, "read_path")):
        return {}
    rows = sqlfiles.run(conn, "cutover/select_read_path", control_schema=manifest.control_schema)
    return {
        service: {"primary_side": side, "dual_write": dual, "changed_at": at.isoformat(), "changed_by": by}
        for service, side, dual, at, by in rows
    }
