"""The drift ledger in the target's control schema: every finding and every
run's per-table summary, written idempotently per (run_id, table), and each
finished run's outcome (its scope and the table tasks that errored)."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from migration_engine import sqlfiles
from migration_engine.reconcile.streak import CleanStreak, RunOutcome
from migration_engine.reconcile.streak import clean_streak as judge_streak

FINDINGS_TABLE = "reconcile_findings"
RUNS_TABLE = "reconcile_runs"
OUTCOMES_TABLE = "reconcile_run_outcomes"
STREAK_VIEW = "reconcile_clean_streak"
SETUP_FILES = ("create_drift_findings", "create_reconcile_runs", "create_run_outcomes", "drop_clean_streak_view")


def _identifiers(control_schema: str) -> dict:
    return {
        "control_schema": control_schema,
        "findings": (control_schema, FINDINGS_TABLE),
        "runs": (control_schema, RUNS_TABLE),
        "outcomes": (control_schema, OUTCOMES_TABLE),
        "streak_view": (control_schema, STREAK_VIEW),
    }


def _statement(name: str, control_schema: str):
    return sqlfiles.statement(f"reconcile/{name}", **_identifiers(control_schema))


def ensure_ledger(conn: psycopg.Connection, control_schema: str) -> None:
    """Create the ledger tables if missing and drop the retired streak view (safe to run every time)."""
    with conn.transaction():
        sqlfiles.run(conn, "ledger/create_control_schema", control_schema=control_schema)
        for name in SETUP_FILES:
            conn.execute(_statement(name, control_schema))


def record_run(conn: psycopg.Connection, control_schema: str, result) -> None:
    """Replace this run's rows for this table: a re-run task leaves one set, not two."""
    table_name = result.table
    with conn.transaction():
        conn.execute(_statement("delete_run_table_findings", control_schema), {"run_id": result.run_id, "table_name": table_name})
        with conn.cursor() as cursor:
            cursor.executemany(_statement("insert_finding", control_schema), [
                {
                    "run_id": result.run_id, "table_name": table_name, "key": str(f.key), "kind": f.kind.value,
                    "repaired": f.repaired, "in_flight": f.in_flight, "source_hash": f.source_hash,
                    "target_hash": f.target_hash, "direction": result.direction.value,
                    "found_at": result.found_at, "repaired_at": result.repaired_at if f.repaired else None,
                }
                for f in result.findings
            ])
        conn.execute(_statement("upsert_run_summary", control_schema), {
            "run_id": result.run_id, "table_name": table_name, "direction": result.direction.value,
            "checked_rows": result.checked_rows, "drifted": result.drifted, "repaired": result.repaired,
            "in_flight": result.in_flight, "settled": result.settled, "unrepaired": result.unrepaired,
            "cap_exceeded": result.cap_exceeded, "clean": result.clean, "seconds": result.seconds,
        })


def record_outcome(conn: psycopg.Connection, control_schema: str, run_id: str, direction: str,
                   tables_in_scope: Iterable[str], tables_errored: Iterable[str] = ()) -> None:
    """Mark a run finished: the tables it set out to check and those whose task errored (a re-run replaces it)."""
    with conn.transaction():
        conn.execute(_statement("upsert_run_outcome", control_schema), {
            "run_id": run_id, "direction": direction,
            "tables_in_scope": sorted(tables_in_scope), "tables_errored": sorted(tables_errored),
        })


def clean_streak(conn: psycopg.Connection, control_schema: str, direction: str, tables: Iterable[str]) -> CleanStreak:
    """How many finished runs in a row, up to the latest, were complete, all-table, error-free and clean
    in ``direction`` over ``tables`` (the manifest's); see ``streak``."""
    with conn.transaction():
        rows = conn.execute(_statement("select_run_outcomes", control_schema)).fetchall()
    runs = [
        RunOutcome(run_id, run_direction, finished_at, frozenset(in_scope), frozenset(errored), frozenset(clean))
        for run_id, run_direction, finished_at, in_scope, errored, clean in rows
    ]
    return judge_streak(runs, direction, tables)


def totals(conn: psycopg.Connection, control_schema: str) -> dict:
    """Drifted rows found and repaired over every recorded run, and how many runs."""
    found, repaired, runs = conn.execute(_statement("select_drift_totals", control_schema)).fetchone()
    return {"found": found, "repaired": repaired, "runs": runs}
