"""
# verify: prove the backfill, table by table

**Runbook phase C, step 3** (section 7.2, strict verification). Scheduled by
the Asset the `backfill` DAG publishes; can also be triggered by hand.

## What it checks (it changes no migrated table; it records its result in the control schema)
- exact row counts, `count(*)` on both sides (not `n_live_tup`);
- a full-row checksum over every column of every mapped table, computed from a
  canonical text form pinned per transaction (TimeZone, DateStyle,
  IntervalStyle, extra_float_digits, bytea_output), so servers with different
  settings and equal data agree;
- every expected state-store key present in its service's schema with an
  identical payload;
- every target sequence at or above the source's.

It writes a report, `verification.html` for people and `verification.json` for
machines, under `MIGRATION_ARTIFACT_DIR` (default `$AIRFLOW_HOME/artifacts`)
`/verify/<run id>/`, then fails the run on any mismatch, naming the tables. On success the ledger moves `backfilled → verified`.

## Re-running
Always safe: it only reads the migrated tables, and the ledger does not move twice.

## When it fails
The report names each failing table. Re-sync it with `backfill` (*force* on,
*tables* = the failing tables), then run this DAG again.
"""

from __future__ import annotations

from airflow.sdk import Asset, Param, dag, get_current_context, task, teardown

from migration_engine import dag_support as ds

DAG_ID = "verify"


@dag(
    dag_id=DAG_ID,
    schedule=[Asset(ds.backfilled_asset_name())],
    **ds.dag_arguments(
        __doc__, "phase-c", "verification",
        params={
            "tables": Param(
                # Only the manifest's names are accepted: anything else is refused at trigger time, before any task.
                [], type="array", items={"type": "string", "enum": [t.qualified for t in ds.manifest().tables]}, title="Tables",
                description="Only these tables (e.g. wallet.users); empty means every table of the manifest.",
            ),

        },
    ),
)
def verify():
    @task(pool=ds.TARGET_POOL)
    def check_ledger_phase():
        return ds.require_phase(DAG_ID, {"backfilled", "verified"}, "verification")

    @task(pool=ds.TARGET_POOL)
    def compare_tables(params=None) -> dict:
        from migration_engine import verify_steps

        return verify_steps.compare(DAG_ID, get_current_context()["run_id"], params["tables"])

    @task
    def check_verified(result: dict) -> dict:
        from migration_engine import verify_steps

        return verify_steps.check(result)

    @task(pool=ds.TARGET_POOL)
    def record_verified(result: dict, params=None) -> bool:
        if params["tables"]:
            return False
        return ds.advance_phase(DAG_ID, get_current_context()["run_id"], "verified", result)

    @teardown
    @task(pool=ds.TARGET_POOL)
    def write_status_report() -> str:
        return ds.write_status_report(DAG_ID, verify_task="compare_tables")

    result = compare_tables()
    check_ledger_phase() >> result
    record_verified(check_verified(result)) >> write_status_report()


verify()
