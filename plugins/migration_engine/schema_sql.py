"""The ordered schema steps of a manifest, rendered per service and applied.

A step is a folder under the manifest's ``schema_sql`` root. A file directly in
the folder is service-less (an extension); a file in a subfolder named after a
service is rendered with ``{{ schema | ident }}`` = that service's schema: its target
schema for the target layout, its source schema (``public``) for the source
layout. Files run in name order within a step (subfolders sorted), and every
file is safe to run twice, so a step can be re-applied after any failure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from migration_engine.endpoints import Endpoint
from migration_engine.manifest import Manifest, SchemaStep
from migration_engine.sqlfiles import SqlFile, TemplateError, render_template

log = logging.getLogger(__name__)

LAYOUTS = ("target", "source")
# Every database has schema public, and creating it again needs CREATE on the
# database, which a service's own source role may not have: the source layout skips it.
SCHEMA_CREATION_STEP = "service_schemas"
PUBLIC_SCHEMA = "public"
# Marks the statement boundaries of a drizzle-kit migration file.
DRIZZLE_BREAKPOINT = "--> statement-breakpoint"


class SchemaSqlError(ValueError):
    pass


@dataclass(frozen=True)
class RenderedStatement:
    label: str  # e.g. "03_foundational_tables/issuer/10_create_tenants.sql"
    service: str | None
    statement: sql.Composed


def find_step(manifest: Manifest, step_name: str) -> SchemaStep:
    for step in manifest.schema_steps:
        if step.name == step_name:
            return step
    known = ", ".join(s.name for s in manifest.schema_steps)
    raise SchemaSqlError(f"{manifest.file.name}: no schema step {step_name!r}; known steps: {known}")


def step_files(manifest: Manifest, step: SchemaStep) -> list[tuple[str | None, Path]]:
    """(service or None, file) pairs of one step, in the order they run."""
    folder = manifest.schema_sql / step.folder
    if not folder.is_dir():
        raise SchemaSqlError(f"schema step {step.name!r}: folder {folder} does not exist; create it or fix schema_steps")
    service_names = {s.name for s in manifest.services}
    found: list[tuple[str | None, Path]] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            if entry.name not in service_names:
                raise SchemaSqlError(
                    f"{entry}: subfolder {entry.name!r} is not a service of {manifest.file.name}; "
                    f"rename it to one of: {', '.join(sorted(service_names))}"
                )
            found.extend((entry.name, path) for path in sorted(entry.glob("*.sql")))
        elif entry.suffix == ".sql":
            found.append((None, entry))
    return found


def _schema_for(manifest: Manifest, service: str, layout: str) -> str:
    spec = manifest.service(service)
    schema = spec.target_schema if layout == "target" else spec.source_schema
    # Enum and constraint files put the schema inside a dollar-quoted DO body.
    if "$" in schema:
        raise SchemaSqlError(f"service {service!r}: schema name {schema!r} contains '$', which the schema SQL cannot quote inside DO blocks")
    return schema


def step_statements(
    manifest: Manifest, step_name: str, layout: str = "target", services: Iterable[str] | None = None
) -> list[RenderedStatement]:
    """Every statement of one step, rendered for the layout, in execution order.

    ``services`` limits the per-service files to those services; service-less
    files are always included (the caller decides which databases they run in).
    """
    if layout not in LAYOUTS:
        raise SchemaSqlError(f"layout must be one of {', '.join(LAYOUTS)}, found {layout!r}")
    step = find_step(manifest, step_name)
    wanted = None if services is None else set(services)
    if wanted is not None:
        unknown = wanted - {s.name for s in manifest.services}
        if unknown:
            raise SchemaSqlError(f"unknown service(s) {', '.join(sorted(unknown))} for schema step {step_name!r}")
    rendered = []
    for service, path in step_files(manifest, step):
        if service is not None and wanted is not None and service not in wanted:
            continue
        label = path.relative_to(manifest.schema_sql).as_posix()
        if service is None:
            statement = SqlFile(path).render()
        else:
            schema = _schema_for(manifest, service, layout)
            if layout == "source" and step.name == SCHEMA_CREATION_STEP and schema == PUBLIC_SCHEMA:
                continue
            statement = SqlFile(path).render(schema=schema)
        rendered.append(RenderedStatement(label, service, statement))
    return rendered


def apply_step(
    conn: psycopg.Connection,
    manifest: Manifest,
    step_name: str,
    layout: str = "target",
    services: Iterable[str] | None = None,
) -> list[str]:
    """Run one step's statements in order on ``conn``, each in its own transaction; return their labels."""
    applied = []
    for item in step_statements(manifest, step_name, layout, services):
        with conn.transaction():
            conn.execute(item.statement)
        log.info("applied %s (%s)", item.label, item.service or "all services")
        applied.append(item.label)
    return applied


def apply_schema(
    conn: psycopg.Connection,
    manifest: Manifest,
    layout: str = "target",
    services: Iterable[str] | None = None,
    *,
    post_load: bool = True,
) -> list[str]:
    """Every step in order on one connection; without ``post_load``, the target as schema_baseline
    leaves it: the steps the backfill applies after its copy (``after_backfill``) left out."""
    return [
        label
        for step in manifest.schema_steps
        if post_load or not step.after_backfill
        for label in apply_step(conn, manifest, step.name, layout, services)
    ]


def create_source_layout(manifest: Manifest, endpoints_by_service: Mapping[str, Endpoint]) -> dict[str, list[str]]:
    """Create every step (constraints included) in each service's own source database.

    Returns the labels applied per service. Safe to run again on a database that has it.
    """
    missing = [s.name for s in manifest.services if s.name not in endpoints_by_service]
    if missing:
        raise SchemaSqlError(f"no source endpoint for service(s): {', '.join(missing)}")
    applied: dict[str, list[str]] = {}
    for service in manifest.services:
        with endpoints_by_service[service.name].connect(autocommit=True) as conn:
            applied[service.name] = apply_schema(conn, manifest, "source", [service.name])
    return applied


def apply_drizzle_migration(conn: psycopg.Connection, path: Path, **identifiers: str | tuple[str, ...]) -> int:
    """Apply a drizzle-kit migration file (statements split by its breakpoint marker) in one transaction.

    Identifiers such as ``{{ schema | ident }}`` are rendered quoted. Returns the number of statements run.
    """
    text = Path(path).read_text()
    statements = [part.strip() for part in text.split(DRIZZLE_BREAKPOINT) if part.strip()]
    if not statements:
        raise TemplateError(f"{path}: no SQL statement found")
    with conn.transaction():
        for i, statement in enumerate(statements, start=1):
            conn.execute(render_template(statement, identifiers, origin=f"{path} statement {i}"))
    return len(statements)
