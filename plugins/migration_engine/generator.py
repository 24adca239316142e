"""Synthetic Credity data, generated inside the three source databases.

Rows are made server-side by ``INSERT ... SELECT`` over ``generate_series``
(include/sql/generate/), in batches, so memory stays flat at any scale. Every
value is a function of (seed, row number) only, never of batch size, order or
time, so two runs with one seed produce identical tables; the one exception is
the state store's ``updated_at``, which is ``now()`` as the apps write it.

Besides realistic values the data carries the hard ones: tabs, newlines,
backslashes, quotes, emoji, CJK, combining marks and right-to-left text inside
text and jsonb, large nested jsonb, NULL in every nullable column, numeric and
integer edge values, timestamps with microseconds and every enum label.

``python -m migration_engine.generator --scale N --seed S`` fills the sources
named by the manifest's ``AIRFLOW_CONN_*`` variables (creating the source layout
first); it refuses to touch tables that already hold rows unless ``--replace``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql

from migration_engine import sqlfiles
from migration_engine.endpoints import Endpoint, EndpointError, from_url, redact
from migration_engine.env_contract import airflow_conn_variable
from migration_engine.manifest import DEFAULT_MANIFEST, Manifest, Service, Table, load_manifest
from migration_engine.schema_sql import create_source_layout

log = logging.getLogger(__name__)

PHASE = "generate"
# Rows per table at scale 1: a few hundred to a few thousand, so tests stay quick.
# The four big tables grow to tens of millions at scale ~10,000.
ROWS_AT_SCALE_1 = {
    "wallet": {
        "users": 300,
        "credentials": 1000,
        "activities": 2000,
        "otp_codes": 300,
        "device_fingerprints": 300,
        "claims": 200,
        "evidence": 300,
        "subscriptions": 200,
        "api_usage": 300,
        "platform_connections": 200,
        "reputation_events": 500,
        "reputation_scores": 250,  # one row per user at most (user_id is unique)
        "safedate_scores": 250,  # idem
    },
    "issuer": {
        "tenants": 20,
        "users": 200,
        "api_keys": 40,
        "issuers": 40,
        "templates": 60,
        "credentials": 1000,
        "trust_score_snapshots": 200,
        "platform_authorities": 40,
        "reputation_events": 300,
        "reputation_signal_snapshots": 200,
        "reputation_scores": 200,
        "reputation_share_grants": 200,
        "consent_grants": 200,
        "students": 300,
        "team_members": 100,
        "verification_logs": 2000,
        "activity_logs": 500,
        "template_designs": 60,
    },
    "recruiter": {"users": 200},
}
BATCH_ROWS = 100_000
# About 250 bytes per entry: 10,000 entries make a payload of 2-3 MB.
STATE_PAYLOAD_ENTRIES = 10_000
MAX_SEED = 2**31 - 1


class GeneratorError(ValueError):
    pass


def planned_rows(manifest: Manifest, scale: float = 1.0) -> dict[str, int]:
    """Rows each table receives at this scale, keyed by ``service.table``."""
    if not scale > 0:
        raise GeneratorError(f"scale must be above 0, found {scale!r}")
    plan = {}
    for table in manifest.tables:
        if table.name == manifest.state_store.table:
            plan[table.qualified] = len(manifest.state_store.keys_by_service.get(table.service, ()))
            continue
        base = ROWS_AT_SCALE_1.get(table.service, {}).get(table.name)
        if base is None:
            raise GeneratorError(
                f"no synthetic data is defined for table {table.qualified}; add it to ROWS_AT_SCALE_1 and include/sql/{PHASE}/"
            )
        plan[table.qualified] = max(1, round(base * scale))
    return plan


def generate(
    manifest: Manifest,
    endpoints_by_service: Mapping[str, Endpoint],
    scale: float = 1.0,
    seed: int = 1,
    replace: bool = False,
) -> dict[str, int]:
    """Fill every service's source database (layout already created); return rows per table.

    Services are filled in parallel, one connection each. Tables that already
    hold rows are an error unless ``replace``, which empties them first.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise GeneratorError(f"seed must be a whole number from 0 to {MAX_SEED}, found {seed!r}")
    plan = planned_rows(manifest, scale)
    missing = [s.name for s in manifest.services if s.name not in endpoints_by_service]
    if missing:
        raise GeneratorError(f"no source endpoint for service(s): {', '.join(missing)}")
    with ThreadPoolExecutor(max_workers=len(manifest.services)) as pool:
        futures = [
            pool.submit(_fill_service, manifest, service, endpoints_by_service[service.name], plan, seed, replace)
            for service in manifest.services
        ]
        results = [future.result() for future in futures]
    return {name: rows for result in results for name, rows in result.items()}


def _fill_service(
    manifest: Manifest, service: Service, endpoint: Endpoint, plan: dict[str, int], seed: int, replace: bool
) -> dict[str, int]:
    tables = [t for t in manifest.tables if t.service == service.name]
    counts = {f"n_{t.name}": plan[t.qualified] for t in tables}
    with endpoint.named("credity-generator").connect(autocommit=True) as conn:
        _prepare_session(conn, seed)
        _empty_or_refuse(conn, service, tables, replace)
        for table in tables:
            started = time.monotonic()
            if table.name == manifest.state_store.table:
                _fill_state_store(conn, table, manifest.state_store.keys_by_service[service.name])
            else:
                _fill_table(conn, table, plan[table.qualified], counts)
            log.info(
                "generated %s rows in %s (%.1f s)", plan[table.qualified], table.qualified, time.monotonic() - started
            )
    return {t.qualified: plan[t.qualified] for t in tables}


def _prepare_session(conn: psycopg.Connection, seed: int) -> None:
    conn.execute(sqlfiles.load(PHASE, "set_seed").render(), {"seed": str(seed)})
    # Helper functions live in pg_temp: they vanish with the session and leave the schema untouched.
    for path in sorted(sqlfiles.sql_path(PHASE, "functions").glob("*.sql")):
        conn.execute(sqlfiles.SqlFile(path).render())


def _empty_or_refuse(conn: psycopg.Connection, service: Service, tables: list[Table], replace: bool) -> None:
    if replace:
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(sql.Identifier(*t.source_ident) for t in tables)))
        return
    for table in tables:
        if conn.execute(
            sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.Identifier(*table.source_ident))
        ).fetchone()[0]:
            raise GeneratorError(
                f"{service.name} source table {'.'.join(table.source_ident)} already holds rows; "
                "the generator only fills empty tables (pass replace=True / --replace to empty them first)"
            )


def _fill_table(conn: psycopg.Connection, table: Table, rows: int, counts: dict[str, int]) -> None:
    statement = sqlfiles.load(PHASE, table.service, f"fill_{table.name}").render(schema=table.source_schema)
    for first in range(1, rows + 1, BATCH_ROWS):
        conn.execute(statement, {"first": first, "last": min(rows, first + BATCH_ROWS - 1), **counts})
    conn.execute(
        sqlfiles.load(PHASE, "set_serial_sequence").render(table=table.source_ident),
        {"schema_name": table.source_schema, "table_name": table.name, "key_name": table.key[0]},
    )


def _fill_state_store(conn: psycopg.Connection, table: Table, keys: tuple[str, ...]) -> None:
    conn.execute(
        sqlfiles.load(PHASE, "fill_credverse_state_store").render(table=table.source_ident),
        {"keys": list(keys), "entries": STATE_PAYLOAD_ENTRIES},
    )


def endpoints_from_env(manifest: Manifest, environ: Mapping[str, str]) -> dict[str, Endpoint]:
    """Each service's source endpoint from its ``AIRFLOW_CONN_*`` variable."""
    endpoints = {}
    for service in manifest.services:
        variable = airflow_conn_variable(manifest.source_conn_id(service.name))
        url = environ.get(variable)
        if not url:
            raise GeneratorError(f"environment variable {variable} (the {service.name} source) is not set")
        endpoints[service.name] = from_url(f"{service.name} source", url)
    return endpoints


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migration_engine.generator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="rows per table relative to the small default (1)")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same data")
    parser.add_argument("--replace", action="store_true", help="empty tables that already hold rows")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    manifest = load_manifest(args.manifest)
    endpoints: dict[str, Endpoint] = {}
    try:
        endpoints = endpoints_from_env(manifest, os.environ)
        create_source_layout(manifest, endpoints)
        started = time.monotonic()
        rows = generate(manifest, endpoints, scale=args.scale, seed=args.seed, replace=args.replace)
    except (GeneratorError, EndpointError, psycopg.Error) as exc:
        secrets = [endpoint.password for endpoint in endpoints.values()]
        print(f"generator failed: {redact(str(exc), *secrets)}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    total = sum(rows.values())
    print(f"{total} rows in {seconds:.1f} s ({total / seconds * 60:,.0f} rows/minute)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
