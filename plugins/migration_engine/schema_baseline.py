"""Runbook phase B's gate: the target schema of every service matches its live source.

Compared per mapped table: columns, types, nullability, defaults (schema names
taken out), primary keys, check constraints and enums with their values.
Unique and foreign-key constraints and secondary indexes are left out here:
the schema step ``post_load_constraints`` adds them after the backfill (NOT
VALID, then VALIDATE), so loading runs without per-row constraint checks
while every row is still checked once before verification. A full compare
(``deferred=False``) after that step includes them.
"""

from __future__ import annotations

import psycopg

from migration_engine import catalog
from migration_engine.checks import CheckFailed
from migration_engine.manifest import Manifest

BASELINE_ALLOWED = {"preflight_passed", "schema_applied"}


class SchemaMismatch(CheckFailed):
    pass


def schema_differences(
    source_conn: psycopg.Connection, target_conn: psycopg.Connection, manifest: Manifest, service: str, *, deferred: bool
) -> tuple[list[str], str]:
    """(differences, target schema digest) for one service."""
    svc = manifest.service(service)
    source_fp = catalog.fingerprint(source_conn, [svc.source_schema])
    target_fp = catalog.fingerprint(target_conn, [svc.target_schema])
    mapped = {t.name for t in svc.tables}
    differences = [
        f"{svc.target_schema}.{name}: table exists in the {service} source but is not in the manifest {manifest.file.name}"
        for name in sorted(set(source_fp.schema(svc.source_schema)["tables"]) - mapped)
    ]
    differences += catalog.diff_catalogs(
        source_fp, target_fp, {svc.source_schema: svc.target_schema}, tables={svc.target_schema: mapped}, deferred=deferred
    )
    return differences, catalog.schema_digest(target_fp, svc.target_schema)


def check_schema_matches_source(
    source_conn: psycopg.Connection, target_conn: psycopg.Connection, manifest: Manifest, service: str, *, deferred: bool = True
) -> str:
    """Raise SchemaMismatch listing every difference; return the target schema's digest."""
    differences, digest = schema_differences(source_conn, target_conn, manifest, service, deferred=deferred)
    if differences:
        raise SchemaMismatch(
            f"the {manifest.service(service).target_schema} schema in the target does not match the live {service} source "
            f"({len(differences)} difference(s)):\n  " + "\n  ".join(differences)
            + "\nFix the schema SQL under include/sql/schema (or the target), then run schema_baseline again."
        )
    return digest
