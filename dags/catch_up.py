"""
# catch_up: bring the apps' writes since the backfill's snapshots to the target

**Runbook phase C, between the backfill and its verification** (sections 5
and 7.1): the apps never stopped writing their sources while the backfill
copied them at one snapshot per source database; this brings those writes over
before `verify` judges the copy and before dual-write opens. Scheduled by the
Asset the `backfill` DAG publishes; can also be triggered by hand, as often as
wanted, while the ledger is at `backfilled` or `verified` (run it right before
`dual_write` to keep the gap small).

## What it changes
Target rows only, source → target, with the reconciliation engine (bucketed
hashes, exact keys, a second read, compare-and-set repair): one mapped task per
large table, small tables packed together (as `reconcile` does), each table
passed over until a pass finds at most *converged_rows* drifted rows (or
*max_passes* is reached). A pass that leaves nothing behind
records, in `migration_control.sync_points`, the source's xmin horizon from its
start: what `verify` and the next catch-up judge drift against. Then the target
sequences are moved up to the sources' (the apps kept drawing ids there). It
moves no ledger phase and writes nothing to the sources.

Drift the sources' history does not explain (the source row is older than the
table's last sync, so no app write explains it: the target was changed or lost
the row) is **not** copied over: the run fails naming each table and key.
*repair_unexplained* copies it from the source instead, once you know why.

On success it publishes the Asset `credity_caught_up`, which starts `verify`.

## Pacing
Before any table task scans, `measure_source_health` times a probe on each
source, the apps' primary; each table's hash scans are then paced the way the
reconcile DAG's are (its *Pacing* section): they rest between 2 MB slices
while more than 5 % of the probes are over its p95 at rest plus *Source latency budget*
(`max_latency_increase`, default 0.3). Empty or 0: no pacing.

## Re-running
Safe at any time: a pass repairs only rows that differ, and only when the
source has not moved since it read them.

## When it fails
Unexplained drift: find what wrote the target (nothing but the migration should
before dual-write), then trigger again with *repair_unexplained* on. Rows left
unrepaired: usually a child whose parent the apps inserted meanwhile, settled in
the same run; the table task's log names them.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, Param, dag, get_current_context, task, teardown

from migration_engine import dag_support as ds

DAG_ID = "catch_up"


@dag(
    dag_id=DAG_ID,
    schedule=[Asset(ds.backfilled_asset_name())],
    **ds.dag_arguments(
        __doc__, "phase-c", "catch-up",
        params={
            "tables": ds.tables_param(),
            "max_passes": Param(
                3, type="integer", minimum=1, maximum=20, title="Passes at most",
                description="Passes over each table at most; each brings what the apps wrote during the one before.",
            ),
            "converged_rows": Param(
                50, type="integer", minimum=0, maximum=1_000_000, title="Converged at (rows)",
                description="A table is caught up once a pass finds at most this many drifted rows.",
            ),
            "repair_cap": Param(
                100_000, type="integer", minimum=0, maximum=10_000_000, title="Repair cap",
                description="At most this many rows repaired per table and pass; above it nothing is repaired and the run fails.",
            ),
            "grace_seconds": Param(
                1, type="number", minimum=0, maximum=600, title="Grace period (s)",
                description="Wait before re-reading drifted rows, so a row the apps are writing is left for the next pass.",
            ),
            "repair_unexplained": Param(
                False, type="boolean", title="Repair unexplained drift",
                description="Also copy from the source rows whose difference no app write explains (off: named and refused).",
            ),
            "max_latency_increase": ds.latency_budget_param(
                "Source latency budget", "each table's hash scans rest between slices"),
        },
    ),
)
def catch_up():
    from migration_engine.tasks import catch_up as steps
    from migration_engine.tasks import shared

    @task(pool=ds.TARGET_POOL)
    def check_ledger_phase():
        return ds.require_phase(DAG_ID, {"backfilled", "verified"}, "catch-up")

    @task
    def list_tables(params=None) -> list[dict]:
        return shared.table_groups(DAG_ID, params["tables"])

    @task(pool=ds.TARGET_POOL, execution_timeout=timedelta(hours=2),
          map_index_template="{{ task.op_kwargs['group']['label'] }}")
    def catch_up_tables(group: dict, budgets: dict | None, params=None) -> list[dict]:
        run_id = get_current_context()["run_id"]
        return steps.catch_up_group(DAG_ID, run_id, group["tables"], params, budgets=budgets)

    @task
    def measure_source_health(params=None) -> dict | None:
        return steps.source_health(DAG_ID, params["max_latency_increase"])

    @task(pool=ds.TARGET_POOL)
    def judge_catch_up(summaries: list[list[dict]], params=None) -> dict:
        return steps.judge(DAG_ID, get_current_context()["run_id"], ds.flatten(summaries), params)

    @task(pool=ds.TARGET_POOL, outlets=[Asset(ds.caught_up_asset_name())])
    def sync_sequences() -> list[dict]:
        return shared.sync_sequences(DAG_ID, gap=0, dry_run=False)

    @teardown
    @task(pool=ds.TARGET_POOL)
    def write_status_report() -> str:
        return ds.write_status_report(DAG_ID)

    ledger = check_ledger_phase()
    tables = list_tables()
    budgets = measure_source_health()
    ledger >> [tables, budgets]
    summaries = catch_up_tables.partial(budgets=budgets).expand(group=tables)
    judged = judge_catch_up(summaries)
    [summaries, judged >> sync_sequences()] >> write_status_report()


catch_up()
