"""Steps of the verification DAG as plain functions over Airflow connections."""

from __future__ import annotations

import logging

from migration_engine import dag_support as ds
from migration_engine.checks import CheckFailed, fail_without_retry

log = logging.getLogger("migration.verify")


def compare(dag_id: str, run_id: str, tables: list[str]) -> dict:
    """Run the verification and write its report; the result (counts and digests only) goes to XCom."""
    from migration_engine.preflight import artifact_folder
    from migration_engine.verify import verify, write_report

    m = ds.manifest()
    known = {t.qualified for t in m.tables}
    unknown = [t for t in tables if t not in known]
    if unknown:
        with fail_without_retry():
            raise CheckFailed(f"tables {unknown!r} are not in the manifest {m.file.name}; known tables: {sorted(known)}")
    endpoints = {s.name: ds.source_endpoint(s.name) for s in m.services}
    result = verify(endpoints, ds.target_endpoint(), m, tables=tables or None)
    html, json_path = write_report(result, artifact_folder(dag_id, run_id))
    for row in result["tables"]:
        log.info("%-40s rows %s/%s checksum %s %.2fs", row["table"], row["rows_source"], row["rows_target"],
                 "match" if row["checksum_match"] else "DIFFERS", row["seconds"])
    log.info("verification %s: report %s (json %s)", "passed" if result["ok"] else "FAILED", html, json_path)
    return {**result, "report_html": str(html), "report_json": str(json_path)}


def check(result: dict) -> dict:
    from migration_engine.verify import assert_verified

    try:
        assert_verified(result)
    except AssertionError as exc:
        ds.refuse(f"{exc} (report: {result['report_html']})")
    return {"tables": len(result["tables"]), "rows": sum(r["rows_source"] for r in result["tables"]),
            "report_html": result["report_html"]}
