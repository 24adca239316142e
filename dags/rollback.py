"""
# rollback: read path back to the source

**Runbook section 8** (rollback plan, target: under 15 minutes). Triggers to use
it: p95 latency regression over 30 %, a sustained rise in 5xx, a data mismatch
in critical tables.

## What it does, in order
1. Refuses unless *confirm* is exactly `ROLLBACK` (before any database is touched).
2. Ledger check: the migration is cut over, or finalized and still within the
   retention window finalize recorded, or a cutover's flip failed after it started
   (`flip_unknown`: the apps may be on either side), or already rolled back (a re-run).
3. **Evidence, then a human decision.** `gather_rollback_evidence` shows the
   ledger phase, each service's read path and dual-write flag (and warns when
   dual-write is off); `approve_rollback` waits up to 4 hours under **Required
   Actions** for *Approve* or *Reject*. Reject skips every later step; no answer
   in time fails the task.
4. The run takes the ledger's fence (`claim_fence`): a finalize run alongside
   refuses its next write; a later one refuses this run's.
5. From `finalized` only: the apps' writes restored on the sources
   (`include/sql/finalize/restore_app_writes.sql`, rendered by Airflow).
6. Dual-write on (it already is after a cutover; finalize turned it off), so
   the target keeps receiving writes and nothing is lost.
7. From `finalized` only: the sources caught up from the target (target → source)
   while the target is still the apps' primary.
8. Sequences carried back: each source sequence set at or above the target's
   plus *sequence_gap* (the apps drew ids on the target).
9. The read path goes back to the source (`include/sql/cutover/set_read_path.sql`,
   rendered by Airflow: see the task's Rendered Template tab).
10. Ledger `cut_over | flip_unknown | finalized → rolled_back`.
11. Validation queries on each source database (the same critical queries as the
   cutover's smoke checks, and a rolled-back write probe).
12. A reverse reconciliation report: what the target has that the source lacks
   since cutover (found only, nothing written).
13. Only when *repair_source* is exactly `REPAIR_SOURCE`: the source is patched
   from the target (target → source, bounded by *repair_cap*), as runbook
   section 8 asks for writes made during the failed window, and only within it:
   a source row is changed only when its version is older than the cutover's
   recorded horizon (the source still holds what it held then), a row the source
   lacks is inserted only when the target wrote it since the cutover. The rest,
   the apps' writes on the source since, is kept and listed as held back.

## Re-running
Safe: the flag and the ledger only change when they differ; the report is read
only; the repair is idempotent (a second pass finds nothing left to repair).
Every write is fenced by the ledger epoch the run started under (moved on only by
its own claim and its own move to `rolled_back`): a cleared task of an old run
refuses naming the current phase. With *dry_run* on (the default) every
statement is rendered and logged and nothing is changed.

## Afterwards
The hourly `reconcile` repairs source → target in `rolled_back`, and its first
clean run over every table starts a new `soak` (`rolled_back → soak`); a second
cutover then waits for the soak and the clean streak like the first.

## When it fails
A refusal names its reason. If the source validation fails, the source itself
is unhealthy: page the database owner; the read path is already on the source.
"""

from __future__ import annotations

from functools import partial

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param, dag, get_current_context, task, teardown

from migration_engine import checks
from migration_engine import dag_support as ds
from migration_engine.rendered_sql import RenderedSqlOperator

DAG_ID = "rollback"
CONFIRM_WORD = "ROLLBACK"
REPAIR_WORD = "REPAIR_SOURCE"


@dag(
    dag_id=DAG_ID,
    schedule=None,
    **ds.dag_arguments(
        __doc__, "rollback", "manual",
        params={
            "confirm": ds.confirm_param(CONFIRM_WORD, "move the read path back to the source"),
            "dry_run": ds.dry_run_param(),
            "repair_source": Param(
                None, type=["null", "string"], title="Repair the source",
                description=f"Type {REPAIR_WORD} to also patch the source from the target after the report. Leave empty for the report only.",
            ),
            "sequence_gap": Param(
                1000, type="integer", minimum=0, maximum=1_000_000_000, title="Sequence safety gap",
                description="Source sequences are set at least this far above the target's, so the apps' inserts never collide.",
            ),
            "repair_cap": Param(
                10_000, type="integer", minimum=0, maximum=10_000_000, title="Repair cap",
                description="At most this many rows repaired per table; above it nothing is repaired for that table.",
            ),

        },
    ),
)
def rollback():
    from migration_engine.tasks import rollback as steps
    from migration_engine.tasks import shared

    def run_id() -> str:
        return get_current_context()["run_id"]

    @task
    def check_confirmation(params=None):
        checks.check_confirmation(params["confirm"], CONFIRM_WORD, DAG_ID)
        steps.check_repair_word(params["repair_source"], REPAIR_WORD)

    @task(pool=ds.TARGET_POOL)
    def check_ledger_phase():
        return steps.check_rollback_window(DAG_ID, ds.require_phase(DAG_ID, {"cut_over", "flip_unknown", "finalized", "rolled_back"}, "rollback"))

    @task(pool=ds.TARGET_POOL)
    def gather_rollback_evidence(phase: dict):
        return steps.gather_evidence(DAG_ID, phase)

    approve_rollback = ApprovalOperator(
        task_id="approve_rollback",
        subject="Roll back? The apps go back to reading from the source",
        body="{{ ti.xcom_pull(task_ids='gather_rollback_evidence')['summary'] }}",
        **ds.APPROVAL,
    )

    @task(pool=ds.TARGET_POOL)
    def claim_fence(params=None):
        return shared.claim_fence(DAG_ID, run_id(), "rollback: the read path back to the source", dry_run=params["dry_run"])

    restore_source_app_writes = RenderedSqlOperator(
        task_id="restore_source_app_writes", plan=partial(shared.plan_app_writes, True), run=steps.restore_app_writes,
    )

    @task(pool=ds.TARGET_POOL)
    def turn_dual_write_on(params=None):
        return shared.set_dual_write(DAG_ID, run_id(), True, dry_run=params["dry_run"])

    @task(pool=ds.TARGET_POOL)
    def catch_source_up(params=None):
        return steps.catch_source_up(DAG_ID, run_id(), dry_run=params["dry_run"], cap=params["repair_cap"])

    flip_read_path_to_source = RenderedSqlOperator(
        task_id="flip_read_path_to_source", pool=ds.TARGET_POOL,
        plan=partial(shared.plan_read_path, "source"), run=shared.apply_read_path,
    )

    @task(pool=ds.TARGET_POOL)
    def record_rolled_back(flags: dict, params=None):
        return steps.record_rolled_back(DAG_ID, run_id(), flags, dry_run=params["dry_run"])

    @task
    def validate_source():
        return steps.validate_source(DAG_ID)

    @task(pool=ds.TARGET_POOL)
    def report_reverse_drift(params=None):
        return steps.report_reverse_drift(DAG_ID, run_id(), cap=params["repair_cap"])

    @task.branch
    def choose_repair(params=None):
        return "repair_source_from_target" if params["repair_source"] == REPAIR_WORD else "skip_repair"

    @task(pool=ds.TARGET_POOL)
    def repair_source_from_target(params=None):
        return steps.repair_source_from_target(DAG_ID, run_id(), dry_run=params["dry_run"], cap=params["repair_cap"])

    @task(pool=ds.TARGET_POOL)
    def carry_sequences_back(params=None):
        return shared.sync_sequences(DAG_ID, gap=params["sequence_gap"], dry_run=params["dry_run"], to_source=True)

    @task
    def skip_repair():
        steps.skip_repair(REPAIR_WORD)

    @teardown
    @task(pool=ds.TARGET_POOL)
    def write_status_report() -> str:
        return ds.write_status_report(DAG_ID)

    phase = check_ledger_phase()
    check_confirmation() >> phase
    gather_rollback_evidence(phase) >> approve_rollback >> claim_fence() >> restore_source_app_writes
    restore_source_app_writes >> turn_dual_write_on() >> catch_source_up() >> carry_sequences_back() \
        >> flip_read_path_to_source
    recorded = record_rolled_back(flip_read_path_to_source.output)
    report = report_reverse_drift()
    recorded >> validate_source() >> report
    repaired = [repair_source_from_target(), skip_repair()]
    report >> choose_repair() >> repaired
    repaired >> write_status_report()


rollback()
