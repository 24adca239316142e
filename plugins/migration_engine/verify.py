"""Prove the target equals the source.

``verify`` compares a quiet estate exactly: counts, full-row checksums,
state-store keys and payloads, sequences. ``verify_live`` judges a source the
apps are still writing, with the reconciliation engine's comparison (bucketed
hashes down to exact keys): a drifted row the source wrote since the table's
last catch-up (``sync_points``) is *in flight* and listed by key; any other
drifted row is unexplained and fails the verification, named by table and key.

Checksums use ``canonical`` (print settings pinned per transaction) over the
source's column list in source order, the same list on both sides, so servers
with different TimeZone/DateStyle and identical data agree. Only counts,
hashes and keys leave the databases: no column value (sensitive or not) is read.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql

from migration_engine.canonical import hash_sum, pin_output_settings, row_md5
from migration_engine.catalog import ColumnMismatch, describe_table, matching_columns
from migration_engine.endpoints import Endpoint
from migration_engine.manifest import Manifest, Table
from migration_engine.pacing import LoadBudget
from migration_engine.reconcile.scan import ReconcileError
from migration_engine.sequences import sequence_pairs, sequence_position
from migration_engine.sync_points import Horizon

# Drifted keys a live verification reads at most per table: memory stays bounded.
LIVE_CAP = 100_000


class VerificationFailed(AssertionError):
    pass


def _count_and_checksum(conn: psycopg.Connection, ident: tuple[str, str], columns: list[str]) -> tuple[int, str]:
    with conn.transaction():
        pin_output_settings(conn)
        count, checksum = conn.execute(
            sql.SQL("SELECT count(*), {} FROM {} AS t").format(hash_sum(columns, hash=row_md5), sql.Identifier(*ident))
        ).fetchone()
    return count, str(checksum)


def verify_table(source: psycopg.Connection, target: psycopg.Connection, table: Table, pool: ThreadPoolExecutor) -> dict:
    started = time.monotonic()
    result = {"table": table.qualified, "rows_source": None, "rows_target": None, "checksum_source": None,
              "checksum_target": None, "rows_match": False, "checksum_match": False, "ok": False, "error": None}
    try:
        columns = [c.name for c in matching_columns(
            table.qualified, describe_table(source, table.source_ident), describe_table(target, table.target_ident),
            source_name=".".join(table.source_ident), target_name=".".join(table.target_ident),
        )]
        # Both sides scan at the same time: the slower side sets the time.
        src = pool.submit(_count_and_checksum, source, table.source_ident, columns)
        tgt = pool.submit(_count_and_checksum, target, table.target_ident, columns)
        (result["rows_source"], result["checksum_source"]), (result["rows_target"], result["checksum_target"]) = src.result(), tgt.result()
        result["rows_match"] = result["rows_source"] == result["rows_target"]
        result["checksum_match"] = result["checksum_source"] == result["checksum_target"]
        result["ok"] = result["rows_match"] and result["checksum_match"]
    except ColumnMismatch as exc:
        result["error"] = str(exc)
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def _payload_digests(conn: psycopg.Connection, manifest: Manifest, schema: str, keys: list[str]) -> dict[str, str]:
    store = manifest.state_store
    with conn.transaction():
        pin_output_settings(conn)
        rows = conn.execute(
            sql.SQL("SELECT {key}, md5({payload}::text) FROM {table} WHERE {key} = ANY(%s)").format(
                key=sql.Identifier(store.key_column), payload=sql.Identifier("payload"),
                table=sql.Identifier(schema, store.table),
            ),
            (keys,),
        ).fetchall()
    return dict(rows)


def verify_state_store(sources: Mapping[str, psycopg.Connection], target: psycopg.Connection, manifest: Manifest,
                       *, payloads: bool = True) -> list[dict]:
    """Every expected key present on both sides, with identical payloads unless ``payloads`` is off
    (on a live source the table's own comparison judges them, writes in flight aside)."""
    results = []
    for service_name, keys in manifest.state_store.keys_by_service.items():
        service = manifest.service(service_name)
        source = _payload_digests(sources[service_name], manifest, service.source_schema, list(keys))
        landed = _payload_digests(target, manifest, service.target_schema, list(keys))
        for key in keys:
            present_source, present_target = key in source, key in landed
            match = present_source and present_target and (not payloads or source[key] == landed[key])
            results.append({"service": service_name, "key": key, "schema": service.target_schema,
                            "present_source": present_source, "present_target": present_target,
                            "payload_match": match, "ok": match})
    return results


def verify_sequences(sources: Mapping[str, psycopg.Connection], target: psycopg.Connection, manifest: Manifest) -> list[dict]:
    results = []
    for table, column, src, dst in sequence_pairs(sources, target, manifest):
        source_pos = sequence_position(sources[table.service], src["sequence"], src["increment"])
        target_pos = sequence_position(target, dst["sequence"], dst["increment"])
        results.append({"table": table.qualified, "column": column, "source_position": source_pos,
                        "target_position": target_pos, "ok": target_pos >= source_pos})
    return results


def verify(
    source_endpoints: Mapping[str, Endpoint],
    target: Endpoint,
    manifest: Manifest,
    *,
    tables: list[str] | None = None,
    state_store: bool = True,
    sequences: bool = True,
) -> dict:
    """Compare every manifest table (or ``tables``, target-qualified names); a JSON-able result.

    ``ok`` is False when any table, state-store key or sequence fails; ``failed_tables``
    names the tables.
    """
    chosen = [manifest.table(name) for name in tables] if tables is not None else list(manifest.tables)
    started = time.monotonic()
    services = {s.name for s in manifest.services}
    sources = {}
    try:
        for name in sorted(services):
            sources[name] = source_endpoints[name].connect(autocommit=True)
        with target.connect(autocommit=True) as tgt, ThreadPoolExecutor(2) as pool:
            table_results = [verify_table(sources[t.service], tgt, t, pool) for t in chosen]
            store_results = verify_state_store(sources, tgt, manifest) if state_store else []
            sequence_results = verify_sequences(sources, tgt, manifest) if sequences else []
    finally:
        for conn in sources.values():
            conn.close()
    failed_tables = [r["table"] for r in table_results if not r["ok"]]
    failures = [f"{r['table']}: {r['error'] or _table_problem(r)}" for r in table_results if not r["ok"]]
    failures += [
        f"state store {r['schema']}.{manifest.state_store.table} key {r['key']}: "
        + ("missing in source" if not r["present_source"] else "missing in target" if not r["present_target"] else "payload differs")
        for r in store_results if not r["ok"]
    ]
    failures += [
        f"{r['table']}.{r['column']}: target sequence at {r['target_position']} is below the source's {r['source_position']}"
        for r in sequence_results if not r["ok"]
    ]
    return {
        "ok": not failures,
        "failed_tables": failed_tables,
        "failures": failures,
        "tables": table_results,
        "state_store": store_results,
        "sequences": sequence_results,
        "seconds": round(time.monotonic() - started, 3),
    }


def verify_live(
    source_endpoints: Mapping[str, Endpoint],
    target: Endpoint,
    manifest: Manifest,
    horizons: Mapping[str, Horizon | None],
    *,
    tables: list[str] | None = None,
    cap: int = LIVE_CAP,
    budgets: Mapping[str, LoadBudget] | None = None,
) -> dict:
    """Judge every table (or ``tables``) against its catch-up horizon in ``horizons`` (qualified name -> Horizon),
    each table's hash scans paced by its source's health when ``budgets`` (by service) has its source.

    ``ok`` is False when a table has unexplained drift, more drift than ``cap``, no catch-up yet, or a
    state-store key missing; sequences are reported (the apps still draw from the source's; the cutover
    syncs the target's before the flip)."""
    from migration_engine.reconcile.engine import Direction, reconcile_table

    chosen = [manifest.table(name) for name in tables] if tables is not None else list(manifest.tables)
    started = time.monotonic()
    table_results = []
    for table in chosen:
        horizon = horizons.get(table.qualified)
        row = {"table": table.qualified, "rows_source": None, "rows_target": None, "rows_match": False,
               "checksum_match": False, "drifted": None, "in_flight": 0, "in_flight_keys": [], "unexplained": 0,
               "unexplained_keys": [], "caught_up_at": horizon.at.isoformat() if horizon else None,
               "ok": False, "error": None, "seconds": 0.0}
        if horizon is None:
            row["error"] = "not caught up since the backfill: run catch_up first"
            table_results.append(row)
            continue
        try:
            result = reconcile_table(table, source_endpoints[table.service], target, run_id="verify",
                                     direction=Direction.SOURCE_TO_TARGET, control_schema=manifest.control_schema,
                                     cap=cap, dry_run=True, horizon=horizon.xmin_horizon,
                                     budget=(budgets or {}).get(table.service))
        except ReconcileError as exc:
            row["error"] = str(exc)
            table_results.append(row)
            continue
        summary = result.summary()
        row.update(rows_source=result.checked_rows, rows_target=result.target_rows,
                   rows_match=result.checked_rows == result.target_rows, checksum_match=result.drifted == 0,
                   drifted=result.drifted, in_flight=result.in_flight, in_flight_keys=summary["in_flight_keys"],
                   unexplained=result.unexplained, unexplained_keys=summary["unexplained_keys"],
                   seconds=round(result.seconds, 3))
        if result.cap_exceeded:
            row["error"] = f"more than {cap} rows differ; run catch_up, then verify again"
        row["ok"] = row["error"] is None and result.unexplained == 0
        table_results.append(row)
    sources = {}
    try:
        for name in sorted({s.name for s in manifest.services}):
            sources[name] = source_endpoints[name].connect(autocommit=True)
        with target.connect(autocommit=True) as tgt:
            store_results = verify_state_store(sources, tgt, manifest, payloads=False)
            sequence_results = verify_sequences(sources, tgt, manifest)
    finally:
        for conn in sources.values():
            conn.close()
    failures = [f"{r['table']}: {r['error']}" for r in table_results if r["error"]]
    failures += [f"{r['table']}: {r['unexplained']} row(s) differ with no app write to explain them, keys "
                 f"{', '.join(r['unexplained_keys'])}" for r in table_results if r["unexplained"]]
    failures += [f"state store {r['schema']}.{manifest.state_store.table} key {r['key']}: "
                 + ("missing in source" if not r["present_source"] else "missing in target")
                 for r in store_results if not r["ok"]]
    return {
        "ok": not failures,
        "live": True,
        "failed_tables": [r["table"] for r in table_results if not r["ok"]],
        "failures": failures,
        "tables": table_results,
        "in_flight": sum(r["in_flight"] for r in table_results),
        "state_store": store_results,
        "sequences": [{**r, "ok": True, "behind": r["target_position"] < r["source_position"]} for r in sequence_results],
        "seconds": round(time.monotonic() - started, 3),
    }


def _table_problem(result: dict) -> str:
    problems = []
    if not result["rows_match"]:
        problems.append(f"row count {result['rows_source']} in source, {result['rows_target']} in target")
    if not result["checksum_match"]:
        problems.append("checksum differs")
    return "; ".join(problems)


def assert_verified(result: Mapping) -> None:
    """Raise VerificationFailed naming every failure (for the DAG task that must fail the run)."""
    if not result["ok"]:
        raise VerificationFailed(
            f"verification failed for {len(result['failures'])} item(s); tables: {', '.join(result['failed_tables']) or 'none'}; "
            + " | ".join(result["failures"])
        )


def write_report(result: Mapping, directory: Path | str) -> tuple[Path, Path]:
    """Write ``verification.html`` (for people) and ``verification.json`` (for machines)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "verification.json"
    html_path = directory / "verification.html"
    json_path.write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
    html_path.write_text(_render_html(result))
    return html_path, json_path


def _cell(value) -> str:
    return f"<td>{html.escape('' if value is None else str(value))}</td>"


def _drift_text(row: Mapping) -> str:
    if "in_flight_keys" not in row:
        return "differs"
    parts = []
    if row["unexplained"]:
        parts.append(f"{row['unexplained']} unexplained: {', '.join(row['unexplained_keys'])}")
    if row["in_flight"]:
        parts.append(f"{row['in_flight']} in flight: {', '.join(row['in_flight_keys'])}")
    return "; ".join(parts)


def _render_html(result: Mapping) -> str:
    status = "PASSED" if result["ok"] else "FAILED"
    rows = []
    for r in result["tables"]:
        flag = "ok" if r["ok"] else "fail"
        checksum = "match" if r["checksum_match"] else (r["error"] or _drift_text(r))
        rows.append(f'<tr class="{flag}">' + "".join(_cell(v) for v in (
            r["table"], r["rows_source"], r["rows_target"], checksum, r["seconds"])) + "</tr>")
    keys = [f'<tr class="{"ok" if r["ok"] else "fail"}">' + "".join(_cell(v) for v in (
        r["service"], r["key"], r["present_source"], r["present_target"], r["payload_match"])) + "</tr>"
        for r in result["state_store"]]
    seqs = [f'<tr class="{"ok" if r["ok"] else "fail"}">' + "".join(_cell(v) for v in (
        r["table"], r["column"], r["source_position"], r["target_position"])) + "</tr>"
        for r in result["sequences"]]
    failures = "".join(f"<li>{html.escape(f)}</li>" for f in result["failures"])
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Verification {status}</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 8px}}
tr.fail{{background:#fdd;font-weight:bold}} .FAILED{{color:#b00}} .PASSED{{color:#070}}</style></head><body>
<h1 class="{status}">Verification {status}</h1>
<p>{len(result['tables'])} tables, {len(result['failed_tables'])} failed; {result['seconds']} s.</p>
<ul>{failures}</ul>
<h2>Tables</h2><table><tr><th>table</th><th>rows source</th><th>rows target</th><th>checksum</th><th>seconds</th></tr>
{''.join(rows)}</table>
<h2>State store</h2><table><tr><th>service</th><th>key</th><th>in source</th><th>in target</th><th>payload identical</th></tr>
{''.join(keys)}</table>
<h2>Sequences</h2><table><tr><th>table</th><th>column</th><th>source</th><th>target</th></tr>
{''.join(seqs)}</table>
</body></html>
"""
