"""Finalize (runbook 5, phase F): the source becomes read-only for the apps.

The app role keeps SELECT, so a rollback inside the retention window can still
read; its writes are revoked on the service's migrated tables (the manifest's), the
only tables the least-privileged migration role may write or revoke. Tables the
schema's owner creates later get the owner's default privileges, which a migration
role that owns nothing cannot change. ``restore_app_writes`` is the reverse a
rollback within the retention window runs: INSERT, UPDATE and DELETE, not TRUNCATE,
which the roles script takes from the app for the migration's duration.
"""

from __future__ import annotations

import psycopg

from migration_engine import sqlfiles
from migration_engine.checks import CheckFailed
from migration_engine.manifest import Service
from migration_engine.sqlfiles import PlannedStatement

REVOKE_FILES = ("revoke_app_writes",)
RESTORE_FILES = ("restore_app_writes",)


def statements(service: Service, *, revoke: bool) -> list[PlannedStatement]:
    if not service.app_role:
        raise ValueError(f"service {service.name} has no app_role in the manifest; add services.{service.name}.app_role")
    names = REVOKE_FILES if revoke else RESTORE_FILES
    identifiers = {"app_role": service.app_role,
                   "tables": [(service.source_schema, name) for name in migrated_tables(service)]}
    return [PlannedStatement(f"finalize/{name}.sql", identifiers, service=service.name) for name in names]


def set_app_writes(
    conn: psycopg.Connection, service: Service, *, allowed: bool, dry_run: bool, log,
    planned: list[PlannedStatement] | None = None,
) -> int:
    """Revoke (``allowed=False``) or restore the app role's writes; returns the tables it can still write.

    ``planned`` are this service's statements as a task's Airflow rendered them; without
    it the engine renders its own. Raises CheckFailed when a revoke leaves any table writable."""
    planned = planned or [s.rendered() for s in statements(service, revoke=not allowed)]
    with conn.transaction():
        for statement in planned:
            log(("DRY RUN, not executed:\n" if dry_run else "executing:\n") + statement.display())
            if not dry_run:
                conn.execute(statement.statement)
    remaining = app_write_grants(conn, service)
    # REVOKE silently skips grants another role made; a source still writable must not pass as read-only.
    if remaining and not allowed and not dry_run:
        raise CheckFailed(
            f"{service.name} source: role {service.app_role} can still write {remaining} table(s) of schema "
            f"{service.source_schema} after the revoke; only a privilege's grantor can revoke it. Re-issue the app's "
            f"grants through the migration role (scripts/create_migration_roles.sql) or revoke them as the tables' owner"
        )
    return remaining


def app_write_grants(conn: psycopg.Connection, service: Service) -> int:
    """The service's migrated tables the app role can write (any of INSERT, UPDATE, DELETE, TRUNCATE)."""
    return sqlfiles.run(conn, "finalize/select_app_write_grants", {
        "app_role": service.app_role, "schema": service.source_schema, "tables": list(migrated_tables(service))}).fetchone()[0]


def roles_script_variables(service: Service, role: str) -> dict[str, str]:
    """The psql variables scripts/create_migration_roles.sql takes for one source database."""
    if not service.app_role:
        raise ValueError(f"service {service.name} has no app_role in the manifest; add services.{service.name}.app_role")
    return {"side": "source", "role": role, "schema": service.source_schema, "app_role": service.app_role,
            "tables": ",".join(migrated_tables(service))}


def migrated_tables(service: Service) -> tuple[str, ...]:
    """The service's tables by their source names: what finalize freezes and the migration role may write."""
    return tuple(table.name for table in service.tables)
