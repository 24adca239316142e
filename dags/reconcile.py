"""
# reconcile: find drift exactly and repair it from the primary, every hour

**Runbook phase D** (continuous reconciliation during dual-write), **phase E**
(the soak after cutover) and **section 8** (the reconciliation diff).

## What it does
Only while the ledger is in `dual_write`, `soak`, `rolled_back`, `cut_over` or
`finalized` (the retention window, when the sources are kept level for a
rollback); in any other phase the run is *skipped*, not failed. Before dual-write, `catch_up`
brings the apps' writes to the target instead. One mapped task per large
table, small tables packed together up to 64 MB of source (a task per tiny
table costs more in scheduling than in work), each table in turn:
1. one scan per side computes a count and a hash sum per key-range bucket;
   only mismatched buckets are read key by key, down to the exact drifted keys;
2. each drifted key is classified (missing in target, extra in target, values
   differ) and read again after a grace period: a row still being written is
   reported *in flight* and left alone, so a newer value is never overwritten;
3. confirmed keys are repaired from the primary side, source → target before
   cutover and target → source after it (and after finalize), by upserts and deletes in small
   transactions, at most *repair_cap* rows per table (above it, nothing is
   repaired and the run fails with an alert: dual-write is broken, not drifting);
4. every finding (keys and hashes, never values) and a per-table summary land in
   `migration_control.reconcile_findings` / `reconcile_runs`.

Tables run side by side, so a child row may be refused by its foreign key when
its parent was written after the parent's table was checked: the judging step
reconciles such tables again, parents first, in the same run. The run fails, and
alerts, when more than *max_unrepaired_rows* rows are still left unrepaired
(rows in flight aside), or when a table task errored (a task's other tables
are still reconciled; all of its tables count as errored). The first clean run in
`dual_write` or `rolled_back` over every table starts the soak (`dual_write → soak`,
`rolled_back → soak`: the way to a second cutover). Each
finished run is recorded in `migration_control.reconcile_run_outcomes` (its
tables and the table tasks that errored); the cutover and finalize gates count
only runs over every table, in the direction they need, with no table task
errored and every table clean, and a run that falls short ends their streak.

## Pacing
Before any table task scans, `measure_apps_health` times a probe (the backfill's, an
app-sized statement) 30 times on the apps' primary (each source before cutover, the target
after it): its median and its p95 at rest. Each table's hash scans then read 2 MB of heap at a
time (TID range scans under one snapshot, so the counts and hash sums add up exactly) while a
probe of their own runs every 0.125 s. A probe over its p95 at rest plus *Apps' latency
budget* (`max_latency_increase`, default 0.3: the runbook's +30 % rollback trigger) is one
that met a slice; the scan holds the share of such probes in the last 5 s at or under 5 %, the
share of the apps' writes a p95 lets through. The first table starts resting 4× each slice's
time after it; once a second, the rest doubles (up to 32×) while more than 5 % of the probes
are over, eases by 30 % while at most 2.5 % are, and stops below a tenth of a slice. The next
table of a task goes on at the pace the last one on the same primary reached. The row sample
that sets the buckets and the key-by-key reads of the buckets that differ rest the same way,
after each statement or batch of 5,000 rows.

The share, not the median: most probes land in a rest and read the server idle, so a median
stays low while every write that meets a slice waits, and a p95 is made of those. The task log
says when a table rested and how long; each table's summary carries the pacer's figures
(`pacing`: baseline, budget, probes, the highest share over, slices, rests, seconds rested).
Empty or 0: no pacing.

## Re-running
Safe: a cleared table task re-finds and re-repairs, and replaces its own ledger
rows for the run. *dry_run* finds and reports and writes nothing anywhere.

## When it fails
`cap exceeded`: look at the dual-write path of the named table before raising
the cap. Unrepaired rows: usually rows refused by a constraint (a child whose
parent is repaired in the same run); the next run repairs them.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, TriggerRule, dag, get_current_context, task, teardown

from migration_engine import dag_support as ds

DAG_ID = "reconcile"


@dag(
    dag_id=DAG_ID,
    schedule="@hourly",
    **ds.dag_arguments(
        __doc__, "phase-d", "phase-e", "scheduled",
        params={
            "tables": Param(
                [], type="array", items={"type": "string"}, title="Tables",
                description="Only these tables (e.g. wallet.users); empty means every table of the manifest. "
                            "A run limited to some tables does not count toward the cutover's clean streak, and ends it.",
            ),
            "dry_run": Param(
                False, type="boolean", title="Dry run",
                description="Find and report drift; write nothing to either database, not even the drift ledger.",
            ),
            "repair_cap": Param(
                1000, type="integer", minimum=0, maximum=10_000_000, title="Repair cap",
                description="At most this many rows repaired per table; above it nothing is repaired and the run fails with an alert.",
            ),
            "grace_seconds": Param(
                3, type="number", minimum=0, maximum=600, title="Grace period (s)",
                description="Wait before re-reading drifted rows, so writes in flight are not taken for drift.",
            ),
            "max_unrepaired_rows": Param(
                0, type="integer", minimum=0, maximum=10_000_000, title="Unrepaired rows tolerated",
                description="The run fails and alerts when more rows than this are left unrepaired (rows in flight aside).",
            ),
            "max_latency_increase": ds.latency_budget_param(
                "Apps' latency budget", "each table's hash scans rest between slices"),
        },
    ),
)
def reconcile():
    from migration_engine.tasks import reconcile as steps
    from migration_engine.tasks import shared

    @task.short_circuit(pool=ds.TARGET_POOL)
    def check_ledger_phase():
        return steps.phase_to_reconcile(DAG_ID)

    @task
    def list_tables(params=None) -> list[dict]:
        return shared.table_groups(DAG_ID, params["tables"])

    @task
    def measure_apps_health(started: dict, params=None) -> dict | None:
        return steps.apps_health(DAG_ID, started["phase"], params["max_latency_increase"])

    # Every table task and the judge write fenced by the ledger epoch the run started under.
    @task(pool=ds.TARGET_POOL, execution_timeout=timedelta(hours=1),
          map_index_template="{{ task.op_kwargs['group']['label'] }}")
    def reconcile_tables(group: dict, started: dict, budgets: dict | None, params=None) -> list[dict]:
        return steps.reconcile_group(DAG_ID, get_current_context(), group, started["phase"], params,
                                     epoch=started["epoch"], budgets=budgets)

    # all_done: a table task that errored must still be judged (and recorded) as an errored run.
    @task(pool=ds.TARGET_POOL, trigger_rule=TriggerRule.ALL_DONE)
    def judge_run(summaries: list[list[dict]], started: dict, groups: list[dict], budgets: dict | None,
                  params=None) -> dict:
        return steps.judge(DAG_ID, get_current_context(), ds.flatten(summaries), started["phase"],
                           [t for g in groups for t in g["tables"]] if groups is not None else None, params,
                           epoch=started["epoch"], budgets=budgets)

    @teardown
    @task(pool=ds.TARGET_POOL)
    def write_status_report() -> str:
        return ds.write_status_report(DAG_ID)

    started = check_ledger_phase()
    tables = list_tables()
    started >> tables
    budgets = measure_apps_health(started)
    summaries = reconcile_tables.partial(started=started, budgets=budgets).expand(group=tables)
    [summaries, judge_run(summaries, started, tables, budgets)] >> write_status_report()


reconcile()
