"""Steps of the verification DAG as plain functions over Airflow connections."""

from __future__ import annotations

import logging

from migration_engine import dag_support as ds
from migration_engine.checks import CheckFailed
from migration_engine.pacing import LoadBudget
from migration_engine.tasks import shared

log = logging.getLogger("migration.verify")


def compare(dag_id: str, run_id: str, tables: list[str], max_latency_increase: float | None = None) -> dict:
    """Run the verification and write its report; the result (counts and digests only) goes to XCom. With
    ``max_latency_increase`` each source's health is measured first and the hash scans keep within it."""
    from migration_engine import sync_points
    from migration_engine.resources import artifact_folder
    from migration_engine.verify import verify_live, write_report

    conns = ds.Connections(dag_id)
    m = ds.manifest()
    known = {t.qualified for t in m.tables}
    unknown = [t for t in tables if t not in known]
    if unknown:
        raise CheckFailed(f"tables {unknown!r} are not in the manifest {m.file.name}; known tables: {sorted(known)}")
    endpoints = conns.source_endpoints()
    chosen = [m.table(t) for t in tables] if tables else list(m.tables)
    with conns.target() as conn:
        sync_points.ensure_table(conn, m)
        horizons = {t.qualified: sync_points.caught_up(conn, m, t) for t in chosen}
    budgets = shared.latency_budgets(dag_id, sorted({t.service for t in chosen}), max_latency_increase)
    result = verify_live(endpoints, conns.target_endpoint, m, horizons, tables=tables or None,
                         budgets=budgets and {service: LoadBudget(**b) for service, b in budgets["sources"].items()})
    html, json_path = write_report(result, artifact_folder(dag_id, run_id))
    for row in result["tables"]:
        log.info("%-40s rows %s/%s %s %.2fs", row["table"], row["rows_source"], row["rows_target"],
                 row["error"] or ("match" if row["checksum_match"] else
                                  f"{row['in_flight']} in flight {row['in_flight_keys'][:5]}, "
                                  f"{row['unexplained']} UNEXPLAINED {row['unexplained_keys'][:20]}"), row["seconds"])
    log.info("verification %s: report %s (json %s)", "passed" if result["ok"] else "FAILED", html, json_path)
    return {**result, "report_html": str(html), "report_json": str(json_path)}


def check(result: dict) -> dict:
    from migration_engine.verify import assert_verified

    try:
        assert_verified(result)
    except AssertionError as exc:
        raise CheckFailed(f"{exc} (report: {result['report_html']})") from None
    return {"tables": len(result["tables"]), "rows": sum(r["rows_source"] for r in result["tables"]),
            "in_flight": result["in_flight"], "report_html": result["report_html"]}
