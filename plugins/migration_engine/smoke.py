"""Smoke checks as the apps see the database: through the pooler, per service schema.

Each service gets a read/write probe (a state-store upsert inside a transaction
that is rolled back, so nothing stays behind) and its critical queries from
the manifest's ``smoke_sql`` folder (``<folder>/<service>/``); files directly in the
folder run for every service. The same checks validate the source after a rollback.
A service that cannot be reached fails its checks like a failed query does: the
cutover rolls back either way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import psycopg

from migration_engine import sqlfiles
from migration_engine.endpoints import PINNED_SEARCH_PATH, Endpoint, EndpointError, redact
from migration_engine.manifest import Manifest

PROBE_FILE = "probe_write_state_store.sql"
PROBE_KEY = "migration-smoke-probe"
CONNECT_CHECK = "connect"
SMOKE_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class SmokeResult:
    service: str
    check: str
    ok: bool
    rows: int
    ms: float
    error: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def smoke_files(root, service: str) -> list[sqlfiles.SqlFile]:
    shared = sorted(p for p in root.glob("*.sql"))
    own = sorted((root / service).glob("*.sql"))
    return [sqlfiles.SqlFile(p) for p in shared + own]


def run_smoke_checks(
    endpoints: Mapping[str, Endpoint], manifest: Manifest, *, layout: str = "target", services=None
) -> list[SmokeResult]:
    """Run every check for the chosen services, each on ``endpoints[service]`` (the target's pooler,
    or the service's source database)."""
    store = manifest.state_store
    results = []
    for service in manifest.services:
        if services and service.name not in services:
            continue
        schema = service.target_schema if layout == "target" else service.source_schema
        identifiers = {
            "schema": schema,
            "state_table": store.table,
            "key_column": store.key_column,
            "updated_column": store.updated_column,
        }
        started = time.monotonic()
        try:
            conn = endpoints[service.name].connect(autocommit=True)
        except EndpointError as exc:
            results.append(SmokeResult(service.name, CONNECT_CHECK, False, 0, _ms_since(started), str(exc)))
            continue
        try:
            for file in smoke_files(manifest.smoke_sql, service.name):
                results.append(_run_one(conn, service.name, file, identifiers))
        finally:
            conn.close()
    return results


def _run_one(conn: psycopg.Connection, service: str, file: sqlfiles.SqlFile, identifiers: dict) -> SmokeResult:
    label = file.path.name
    used = {k: v for k, v in identifiers.items() if k in file.placeholders}
    started = time.monotonic()
    try:
        statement = file.render(**used)
        with conn.transaction(force_rollback=(label == PROBE_FILE)):
            # Transaction-local settings: nothing leaks to the next client of the pooler's server connection.
            conn.execute(
                "SELECT set_config('statement_timeout', %(ms)s, true), set_config('lock_timeout', %(ms)s, true), "
                "set_config('DateStyle', 'ISO', true), set_config('search_path', %(path)s, true)",
                {"ms": str(SMOKE_TIMEOUT_MS), "path": PINNED_SEARCH_PATH},
            )
            cursor = conn.execute(statement, {"probe_key": PROBE_KEY} if label == PROBE_FILE else None)
            rows = len(cursor.fetchall()) if cursor.description else cursor.rowcount
        if label == PROBE_FILE and rows != 1:
            raise RuntimeError("write probe returned no row")
        return SmokeResult(service, label, True, rows, _ms_since(started))
    except (psycopg.Error, RuntimeError) as exc:
        return SmokeResult(service, label, False, 0, _ms_since(started), redact(str(exc)).strip())


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
