"""Runbook phase A: prove the estate is ready before anything is written.

- every manifest table exists in its source, keyed by a primary key or unique
  constraint on NOT NULL columns (checked with the endpoint, before anything is written);
- every endpoint answers: server version, TLS as the client sees it (and as the
  server sees it on a direct connection), the role used and whether it is a
  superuser; the target role may create schemas;
- persistence is strict, proven from the data: every expected state-store key
  exists in its service's source database and was updated recently;
- each source schema's fingerprint is frozen in the ledger, and
  ``check_fingerprint_unchanged`` lets later phases fail on any change;
- a readable summary (text and JSON) closes the run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from itertools import permutations
from pathlib import Path

import psycopg

from migration_engine import catalog, ledger, sqlfiles
from migration_engine.checks import CheckFailed
from migration_engine.endpoints import Endpoint
from migration_engine.manifest import Manifest

FINGERPRINT_FACT = "schema_fingerprint:{service}"
BACKUP_FACT = "backup:{service}"
SUMMARY_FACT = "preflight_summary"

# Preflight may run on a fresh target or again before the schema is applied;
# afterwards the frozen fingerprint is what later phases compare against.
PREFLIGHT_ALLOWED = {None, "preflight_passed"}

log = logging.getLogger("migration.preflight")


class StateStoreError(CheckFailed):
    pass


class SchemaChanged(CheckFailed):
    pass


def _query(conn: psycopg.Connection, name: str, params: dict | None = None, **identifiers) -> list[tuple]:
    return sqlfiles.run(conn, f"preflight/{name}", params, **identifiers).fetchall()


def probe(endpoint: Endpoint, *, need_create_schema: bool = False) -> dict:
    """Connect and report what the server and the client see; no secret in the result."""
    with endpoint.connect(autocommit=True) as conn:
        version, database, role, superuser = _query(conn, "select_server_identity")[0]
        report = {
            "endpoint": endpoint.name,
            "where": endpoint.describe(),
            "pooled": endpoint.pooled,
            "server_version": version,
            "database": database,
            "role": role,
            "superuser": superuser,
            "client_tls": bool(conn.pgconn.ssl_in_use),
            "client_tls_protocol": _attribute(conn, b"protocol"),
        }
        # Behind a pooler the server-side row describes the pooler's own link, not ours.
        if not endpoint.pooled:
            row = _query(conn, "select_own_tls")
            report["server_tls"] = bool(row and row[0][0])
            report["server_tls_version"] = row[0][1] if row else None
        if need_create_schema:
            report["can_create_schema"] = bool(_query(conn, "select_can_create_schema")[0][0])
            if not report["can_create_schema"]:
                raise CheckFailed(
                    f"{endpoint.name} ({endpoint.describe()}): role {role} may not create schemas in database "
                    f"{database}; grant CREATE on the database or use its owner role"
                )
    return report


# A conservative logical copy rate per source; the warning below is about hours, not seconds.
ASSUMED_COPY_MB_PER_S = 20.0
SNAPSHOT_HOLD_WARN_S = 3600


def snapshot_hold_estimate(conn: psycopg.Connection, manifest: Manifest, service: str) -> dict:
    """How long the backfill will hold this source's snapshot open, and what could end it early.

    While it is held, vacuum cannot remove rows that died after it was taken; a long hold on a busy
    source means bloat. The holder turns the idle-in-transaction and transaction timeouts off for
    its own session, so a server-wide setting does not end it; the estimate says which are set."""
    tables = [t for t in manifest.tables if t.service == service]
    nbytes, idle_timeout, transaction_timeout = _query(conn, "select_snapshot_hold_inputs", {
        "schemas": [t.source_ident[0] for t in tables], "tables": [t.source_ident[1] for t in tables]})[0]
    seconds = round(nbytes / (ASSUMED_COPY_MB_PER_S * 1024 * 1024))
    estimate = {
        "bytes": nbytes, "estimated_hold_s": seconds, "assumed_mb_per_s": ASSUMED_COPY_MB_PER_S,
        "idle_in_transaction_session_timeout": idle_timeout, "transaction_timeout": transaction_timeout,
        "long": seconds > SNAPSHOT_HOLD_WARN_S,
    }
    if estimate["long"]:
        log.warning(
            "%s source: the backfill will hold its snapshot open for about %.1f h (%.1f GB at %g MB/s); vacuum "
            "cannot clean up rows that die meanwhile. Run the backfill in a quiet period, or raise the pool size",
            service, seconds / 3600, nbytes / 1024**3, ASSUMED_COPY_MB_PER_S)
    return estimate


class ManifestMismatch(CheckFailed):
    pass


def manifest_table_problems(fingerprint: catalog.Fingerprint, manifest: Manifest, service: str) -> list[str]:
    """Manifest tables the source lacks, keys no primary key or unique constraint backs, and nullable keys.

    A key that may repeat would make chunks overlap and reconcile repair the wrong rows.
    """
    svc = manifest.service(service)
    tables = fingerprint.schema(svc.source_schema)["tables"]
    problems = []
    for table in svc.tables:
        where = f"{svc.source_schema}.{table.name} in the {service} source"
        found = tables.get(table.name)
        if found is None:
            problems.append(f"{where}: table is listed in the manifest {manifest.file.name} but does not exist")
            continue
        missing = [c for c in table.key if c not in found["columns"]]
        if missing:
            problems.append(f"{where}: key column(s) {missing} do not exist")
            continue
        unique_keys = {
            sig for sig, info in found["constraints"].items() if info["kind"] in ("primary key", "unique")
        }
        if not any(f"{kind} ({', '.join(order)})" in unique_keys
                   for kind in ("primary key", "unique") for order in permutations(table.key)):
            problems.append(f"{where}: key {list(table.key)} is not unique (no primary key or unique constraint on it)")
        # A unique constraint lets NULLs repeat: such rows would be copied twice, then merged away, and never chunked.
        problems += [
            f"{where}: key column {column} may be NULL; make it NOT NULL or key the table on a primary key"
            for column in table.key if not found["columns"][column]["not_null"]
        ]
    return problems


def check_manifest_tables(conn: psycopg.Connection, manifest: Manifest, service: str) -> int:
    """Raise ManifestMismatch naming every problem; return the number of tables checked."""
    schema = manifest.service(service).source_schema
    problems = manifest_table_problems(catalog.fingerprint(conn, [schema]), manifest, service)
    if problems:
        raise ManifestMismatch(
            f"the manifest does not match the {service} source ({len(problems)} problem(s)):\n  " + "\n  ".join(problems)
            + f"\nFix {manifest.file.name} or the source, then run preflight again."
        )
    return len(manifest.service(service).tables)


def _attribute(conn: psycopg.Connection, name: bytes) -> str | None:
    value = conn.pgconn.ssl_attribute(name) if conn.pgconn.ssl_in_use else None
    return value.decode() if value else None


def check_state_store(conn: psycopg.Connection, manifest: Manifest, service: str, max_age_hours: float) -> list[dict]:
    """Every expected key of ``service`` exists and was updated within ``max_age_hours``."""
    store = manifest.state_store
    keys = list(store.keys_by_service.get(service, ()))
    if not keys:
        return []
    schema = manifest.service(service).source_schema
    where = f"{service} source: {schema}.{store.table}"
    if not catalog.table_exists(conn, (schema, store.table)):
        raise StateStoreError(
            f"{where} does not exist: the {service} service has never persisted its state to this database "
            f"(is it running in memory? set REQUIRE_DATABASE=true)"
        )
    rows = _query(
        conn,
        "select_state_store_keys",
        {"keys": keys},
        state_store=(schema, store.table),
        key_column=store.key_column,
        updated_column=store.updated_column,
    )
    found, problems = [], []
    for key, updated_at, age_hours in rows:
        if updated_at is None:
            problems.append(f"key {key!r} of service {service} is missing from {schema}.{store.table}")
            continue
        age = float(age_hours)
        found.append({"key": key, "updated_at": updated_at.isoformat(), "age_hours": round(age, 2)})
        if age > max_age_hours:
            problems.append(
                f"key {key!r} of service {service} was last updated {age:.1f} h ago ({updated_at.isoformat()}), "
                f"older than the {max_age_hours:g} h window"
            )
    if problems:
        raise StateStoreError(
            "persistence is not proven strict: " + "; ".join(problems)
            + ". Check that the service runs with REQUIRE_DATABASE=true against this database."
        )
    return found


def freeze_fingerprint(
    source_conn: psycopg.Connection,
    ledger_conn: psycopg.Connection,
    manifest: Manifest,
    service: str,
    dag_id: str,
    run_id: str,
) -> dict:
    """Record the source schema's fingerprint in the ledger; returns its digest."""
    schema = manifest.service(service).source_schema
    fp = catalog.fingerprint(source_conn, [schema])
    value = {"schema": schema, "sha256": fp.sha256, "fingerprint": fp.schemas}
    ledger.record_fact(ledger_conn, manifest.control_schema, FINGERPRINT_FACT.format(service=service), value, dag_id, run_id)
    return {"service": service, "schema": schema, "sha256": fp.sha256, "tables": len(fp.schema(schema)["tables"])}


def frozen_fingerprint(ledger_conn: psycopg.Connection, manifest: Manifest, service: str) -> tuple[catalog.Fingerprint, ledger.Fact]:
    fact = ledger.read_fact(ledger_conn, manifest.control_schema, FINGERPRINT_FACT.format(service=service))
    if fact is None:
        raise ledger.PhaseError(f"no schema fingerprint of the {service} source is recorded in the ledger. Run preflight first.")
    return catalog.Fingerprint(fact.value["fingerprint"]), fact


def check_fingerprint_unchanged(
    ledger_conn: psycopg.Connection, source_conn: psycopg.Connection, manifest: Manifest, service: str
) -> str:
    """Fail, naming every change, when the live source schema differs from the one frozen at preflight."""
    frozen, fact = frozen_fingerprint(ledger_conn, manifest, service)
    schema = manifest.service(service).source_schema
    live = catalog.fingerprint(source_conn, [schema])
    if live.sha256 == frozen.sha256:
        return live.sha256
    # Fingerprints hold no schema names inside, so the live one may be filed under the
    # target schema's name: differences then read "wallet.users: ...", as everywhere else.
    label = manifest.service(service).target_schema
    changes = catalog.diff_catalogs(
        frozen, catalog.Fingerprint({label: live.schema(schema)}), {schema: label},
        source_label="the preflight fingerprint", target_label="the live source",
    )
    raise SchemaChanged(
        f"the {service} source schema changed since preflight (frozen {fact.recorded_at:%Y-%m-%d %H:%M:%S %Z}, "
        f"run {fact.run_id}):\n  " + "\n  ".join(changes or ["(fingerprint differs)"])
        + "\nThe schema freeze was broken: apply the change to the target schema SQL too, then run preflight again."
    )


def check_sources_unchanged(
    ledger_conn: psycopg.Connection, manifest: Manifest, source_endpoints: Mapping[str, Endpoint]
) -> dict[str, str]:
    """``check_fingerprint_unchanged`` for every service, on its endpoint in ``source_endpoints``; one
    failure naming all changes."""
    digests, failures = {}, []
    for service in manifest.services:
        with source_endpoints[service.name].connect() as source:
            try:
                digests[service.name] = check_fingerprint_unchanged(ledger_conn, source, manifest, service.name)
            except SchemaChanged as exc:
                failures.append(str(exc))
    if failures:
        raise SchemaChanged("\n".join(failures))
    return digests


def summary_text(summary: dict) -> str:
    """The preflight result as a person reads it."""
    lines = [f"Preflight of migration {summary['migration']} (run {summary['run_id']})", "", "Endpoints:"]
    for r in summary["endpoints"]:
        tls = "TLS " + (r.get("client_tls_protocol") or "on") if r["client_tls"] else "no TLS"
        lines.append(
            f"  {r['endpoint']:<18} {r['where']:<48} PostgreSQL {r['server_version'].split()[0]:<7} {tls:<12} "
            f"role {r['role']}{' (SUPERUSER)' if r['superuser'] else ''}"
        )
    lines += ["", f"State-store keys (window {summary['max_age_hours']:g} h):"]
    for service, keys in summary["state_store"].items():
        oldest = max((k["age_hours"] for k in keys), default=0)
        lines.append(f"  {service:<10} {len(keys)} keys present, oldest updated {oldest:.1f} h ago")
    lines += ["", "Schema fingerprints (frozen):"]
    for fp in summary["fingerprints"]:
        lines.append(f"  {fp['service']:<10} {fp['schema']}: {fp['tables']} tables, sha256 {fp['sha256'][:16]}")
    lines += ["", "Backups (verified with pg_restore --list):"]
    for b in summary["backups"]:
        lines.append(
            f"  {b['service']:<10} {b['path']}  {b['size_bytes']} bytes  sha256 {b['sha256'][:16]}"
            f"{'  (reused)' if b.get('reused') else ''}"
        )
    return "\n".join(lines) + "\n"


def write_artifacts(folder: Path, name: str, summary: dict) -> tuple[Path, Path]:
    """``<name>.json`` and ``<name>.txt`` in ``folder``, each written then renamed into place."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, content in ((".json", json.dumps(summary, indent=2, sort_keys=True, default=str)), (".txt", summary_text(summary))):
        path = folder / f"{name}{suffix}"
        partial = path.with_suffix(suffix + ".partial")
        partial.write_text(content)
        partial.replace(path)
        paths.append(path)
    return paths[0], paths[1]
