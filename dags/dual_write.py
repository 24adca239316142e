"""
# dual_write: open the dual-write window

**Runbook phase D, step 1** (section 5): the apps start writing to both the
source and the target; the read path stays on the source.

## What it changes
- `migration_control.read_path` in the target: `dual_write = true` for every
  service (the flag the apps read; see the README's *Contract for the apps*).
- The phase ledger: `verified → dual_write`. The hourly `reconcile` DAG then
  repairs drift, and its first clean run starts the soak (`dual_write → soak`).

## Before you trigger
`verify` has passed (ledger phase `verified`). Type `DUAL_WRITE` in *confirm*.
With *dry_run* on (the default) every statement is rendered and logged, and
nothing is changed.

## Re-running
Safe at any time while the ledger is at `verified` or `dual_write`: flags that
already hold the value are not touched, and the ledger does not move twice.

## When it fails
Read the failed task's log: a refusal names its reason (wrong confirm, wrong
phase, source schema changed since preflight). Fix the cause and trigger again.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from migration_engine import checks
from migration_engine import dag_support as ds

DAG_ID = "dual_write"
CONFIRM_WORD = "DUAL_WRITE"


@dag(
    dag_id=DAG_ID,
    schedule=None,
    **ds.dag_arguments(
        __doc__, "phase-d", "manual",
        params={
            "confirm": ds.confirm_param(CONFIRM_WORD, "open the dual-write window"),
            "dry_run": ds.dry_run_param(),

        },
    ),
)
def dual_write():
    from migration_engine.tasks import dual_write as steps
    from migration_engine.tasks import shared

    @task
    def check_confirmation(params=None):
        checks.check_confirmation(params["confirm"], CONFIRM_WORD, DAG_ID)

    @task(pool=ds.TARGET_POOL)
    def check_ledger_phase():
        return ds.require_phase(DAG_ID, {"verified", "dual_write"}, "opening dual-write")

    @task
    def check_source_schema_unchanged():
        return shared.check_source_schema_unchanged(DAG_ID)

    @task(pool=ds.TARGET_POOL)
    def enable_dual_write(params=None):
        return shared.set_dual_write(DAG_ID, get_current_context()["run_id"], True, dry_run=params["dry_run"])

    @task(pool=ds.TARGET_POOL)
    def record_dual_write(flags: dict, params=None):
        return steps.record_dual_write(DAG_ID, get_current_context()["run_id"], flags, dry_run=params["dry_run"])

    gates = check_confirmation() >> check_ledger_phase() >> check_source_schema_unchanged()
    flags = enable_dual_write()
    gates >> flags
    record_dual_write(flags)


dual_write()
