"""
# verify: prove the copy on a live source, table by table

**Runbook phase C, step 3** (section 7.2, strict verification). Scheduled by
the Asset the `catch_up` DAG publishes; can also be triggered by hand.

## What it checks (it changes no migrated table; it records its result in the control schema)
The apps keep writing their sources, so the target is always a few writes
behind. Every row of every mapped table is compared with the reconciliation
engine: per key-range bucket a count and a sum of full-row hashes, over a
canonical text form pinned per transaction (TimeZone, DateStyle,
IntervalStyle, extra_float_digits, bytea_output), down to the exact keys that
differ. Each differing key is then judged against the table's last catch-up
(its source xmin horizon in `migration_control.sync_points`):
- **in flight**: the source wrote (or deleted) the row since that catch-up; an
  app write the next catch-up or the dual-write reconciliation brings over.
  Listed by key in the report, never counted as equal.
- **unexplained**: the source row is older than that catch-up, yet the target
  differs or lacks it. No app write explains it: the target was changed or lost
  the row. The run fails, naming the table and key.

A table with no catch-up yet fails (run `catch_up`). Every expected state-store
key must be present on both sides (payloads are judged with their table). The
sequences are reported: the apps still draw ids from the sources', and the
cutover syncs the target's before it flips.

It writes a report, `verification.html` for people and `verification.json` for
machines, under `MIGRATION_ARTIFACT_DIR` (default `$AIRFLOW_HOME/artifacts`)
`/verify/<run id>/`. On success the ledger moves `backfilled → verified`.

## Pacing
`compare_tables` first times a probe on each source before it scans, then paces each
table's hash scans the way the reconcile DAG does (its *Pacing* section): it
rests between 2 MB slices while more than 5 % of the probes are over its p95 at rest
plus *Source latency budget* (`max_latency_increase`, default 0.3). Empty or 0: no pacing.

## Re-running
Always safe: it only reads the migrated tables, and the ledger does not move twice.

## When it fails
The report names each failing table and key. Find what changed the target
(before dual-write nothing but the migration writes it), then run `catch_up`
with *repair_unexplained* on and this DAG again.
"""

from __future__ import annotations

from airflow.sdk import Asset, dag, get_current_context, task, teardown

from migration_engine import dag_support as ds

DAG_ID = "verify"


@dag(
    dag_id=DAG_ID,
    schedule=[Asset(ds.caught_up_asset_name())],
    **ds.dag_arguments(
        __doc__, "phase-c", "verification",
        params={
            "tables": ds.tables_param(),
            "max_latency_increase": ds.latency_budget_param(
                "Source latency budget", "each table's hash scans rest between slices"),
        },
    ),
)
def verify():
    from migration_engine.tasks import verify as steps

    @task(pool=ds.TARGET_POOL)
    def check_ledger_phase():
        return ds.require_phase(DAG_ID, {"backfilled", "verified"}, "verification")

    @task(pool=ds.TARGET_POOL)
    def compare_tables(params=None) -> dict:
        return steps.compare(DAG_ID, get_current_context()["run_id"], params["tables"], params["max_latency_increase"])

    @task
    def check_verified(result: dict) -> dict:
        return steps.check(result)

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
