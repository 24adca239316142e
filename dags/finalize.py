"""
# finalize: contract, the source stops taking writes

**Runbook phase F** (section 5) and section 11 (rollback window: 7 days minimum).

## What it does, in order
1. Refuses unless *confirm* is exactly `FINALIZE` (before any database is touched).
2. Gates: ledger phase is `cut_over`. Two gates **wait** (rescheduling sensors)
   for up to *gate_wait_hours*: the cutover lasting *min_cutover_hours* (refused at
   once when it cannot in time), and the last *min_clean_reconciles* finished
   reconciliation runs being clean, each over every table, target → source, with
   no table task errored.
3. Its own final reconciliation, target → source over every table, at most
   *max_drift_rows* rows left unrepaired: the sources are level when they stop.
4. **Evidence, then a human decision.** `gather_finalize_evidence` shows the
   hours cut over, the clean streak, the final reconciliation, the retention to
   record and, per service, how many source tables its app role can still write;
   `approve_finalize` waits up to 4 hours under **Required Actions** for *Approve*
   or *Reject*. Reject skips every later step; no answer in time fails the task.
5. The run takes the ledger's fence (`claim_fence`): a rollback run started
   before it refuses its next write, and a rollback started after it makes this
   run's next write refuse. Finalize and rollback never interleave their writes.
6. Dual-write turned off in the flag store: the apps stop writing the sources.
7. Each source is made read-only for its app role (`include/sql/finalize/revoke_app_*.sql`,
   rendered by Airflow: see the task's Rendered Template tab): the role keeps
   SELECT, loses INSERT, UPDATE, DELETE and TRUNCATE.
8. A final verified backup of each source (pg_dump, checked with pg_restore --list).
9. The rollback retention window (*retention_days*, at least 7) recorded in the ledger.
10. Ledger `cut_over → finalized`. The hourly reconcile keeps the sources level
   (target → source) through the retention window, and the `rollback` DAG can
   still bring the apps back within it. Remove the dual-write code from the apps after sign-off.

With *dry_run* on (the default) every statement is rendered and logged and
nothing is changed.

## The reverse
Within the retention window, the `rollback` DAG: it restores the apps' writes
on the sources (`include/sql/finalize/restore_app_writes.sql`), turns
dual-write back on, catches the sources up from the target and flips the read
path back. Tables created after finalize are not covered: they get their
owner's default privileges.

## Re-running
Safe: revoking what is already revoked changes nothing; a backup of an
unchanged source is reused; the ledger does not move twice. Every write is
fenced by the ledger epoch the run started under: a cleared task of an old run,
or a run overtaken by a rollback, refuses naming the current phase.

## When it fails
A gate names its reason. A failed backup leaves the ledger at `cut_over`:
check the backup location's free space and permissions, then clear the task.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param, dag, get_current_context, task, teardown

from migration_engine import checks
from migration_engine import dag_support as ds
from migration_engine.rendered_sql import RenderedSqlOperator

DAG_ID = "finalize"
CONFIRM_WORD = "FINALIZE"


@dag(
    dag_id=DAG_ID,
    schedule=None,
    **ds.dag_arguments(
        __doc__, "phase-f", "manual",
        params={
            "confirm": ds.confirm_param(CONFIRM_WORD, "make the sources read-only for the apps"),
            "dry_run": ds.dry_run_param(),
            "min_cutover_hours": Param(
                24, type="number", minimum=0, maximum=8760, title="Minimum time cut over (hours)",
                description="How long the read path must have been on the target.",
            ),
            "min_clean_reconciles": Param(
                3, type="integer", minimum=0, maximum=10_000, title="Clean reconciles required",
                description="Consecutive clean reconciliation runs (target to source, every table, no table task errored) required.",
            ),
            "gate_wait_hours": ds.gate_wait_param(),
            "max_drift_rows": Param(
                0, type="integer", minimum=0, maximum=1_000_000, title="Max drift rows",
                description="Rows the final reconciliation (target to source) may leave unrepaired (rows in flight excluded).",
            ),
            "repair_cap": Param(
                1000, type="integer", minimum=0, maximum=10_000_000, title="Repair cap",
                description="The final reconciliation repairs at most this many rows per table; above it, nothing is repaired and finalize stops.",
            ),
            "retention_days": Param(
                7, type="integer", minimum=7, maximum=3650, title="Rollback retention (days)",
                description="How long the source and its final backup are kept (runbook: 7 days minimum).",
            ),
            "max_latency_increase": ds.latency_budget_param(
                "Apps' latency budget", "the final reconciliation's hash scans rest between slices"),
        },
    ),
)
def finalize():
    from migration_engine.tasks import finalize as steps
    from migration_engine.tasks import shared

    def run_id() -> str:
        return get_current_context()["run_id"]

    @task
    def check_confirmation(params=None):
        checks.check_confirmation(params["confirm"], CONFIRM_WORD, DAG_ID)

    @task(pool=ds.TARGET_POOL)
    def check_ledger_phase():
        return ds.require_phase(DAG_ID, {"cut_over", "finalized"}, "finalize")

    @task.sensor(pool=ds.TARGET_POOL, **ds.GATE_SENSOR)
    def wait_for_cutover_soak(phase: dict, params=None):
        return ds.poke(steps.wait_for_cutover_soak(DAG_ID, phase, params["min_cutover_hours"],
                                                   wait_left_hours=ds.gate_wait_left(params["gate_wait_hours"])))

    wait_for_clean_reconciles = shared.clean_reconciles_sensor(DAG_ID, "target_to_source")

    @task(pool=ds.TARGET_POOL, execution_timeout=timedelta(hours=1))
    def run_final_reconcile(params=None):
        from migration_engine.reconcile.engine import Direction

        return shared.reconcile_all(
            DAG_ID, run_id(), Direction.TARGET_TO_SOURCE, dry_run=params["dry_run"],
            cap=params["repair_cap"], max_unrepaired=params["max_drift_rows"],
            max_latency_increase=params["max_latency_increase"],
        )

    @task
    def gather_finalize_evidence(soak: dict, streak: dict, final: dict, params=None):
        return steps.gather_evidence(DAG_ID, soak, streak, final, retention_days=params["retention_days"],
                                     dry_run=params["dry_run"])

    approve_finalize = ApprovalOperator(
        task_id="approve_finalize",
        subject="{{ 'Dry run: finalize' if params.dry_run else 'Finalize' }}? The apps lose their writes on the sources",
        body="{{ ti.xcom_pull(task_ids='gather_finalize_evidence')['summary'] }}",
        **ds.APPROVAL,
    )

    @task(pool=ds.TARGET_POOL)
    def claim_fence(params=None):
        return shared.claim_fence(DAG_ID, run_id(), "finalize: dual-write off, the sources' app writes revoked",
                                 dry_run=params["dry_run"])

    @task(pool=ds.TARGET_POOL)
    def turn_dual_write_off(params=None):
        return shared.set_dual_write(DAG_ID, run_id(), False, dry_run=params["dry_run"])

    revoke_source_app_writes = RenderedSqlOperator(
        task_id="revoke_source_app_writes", plan=partial(shared.plan_app_writes, False),
        run=partial(shared.set_app_writes, False),
    )

    @task
    def take_final_backup(params=None):
        return steps.final_backup(DAG_ID, run_id(), dry_run=params["dry_run"])

    @task(pool=ds.TARGET_POOL)
    def record_retention(params=None):
        return steps.record_retention(DAG_ID, run_id(), params["retention_days"], dry_run=params["dry_run"])

    @task(pool=ds.TARGET_POOL)
    def record_finalized(revoked: dict, retention, params=None):
        return steps.record_finalized(DAG_ID, run_id(), revoked, retention, dry_run=params["dry_run"])

    @teardown
    @task(pool=ds.TARGET_POOL)
    def write_status_report() -> str:
        return ds.write_status_report(DAG_ID)

    phase = check_ledger_phase()
    check_confirmation() >> phase
    soak, streak = wait_for_cutover_soak(phase), wait_for_clean_reconciles()
    phase >> streak
    final = run_final_reconcile()
    [soak, streak] >> final
    gather_finalize_evidence(soak, streak, final) >> approve_finalize >> claim_fence() >> turn_dual_write_off() \
        >> revoke_source_app_writes
    backup = take_final_backup()
    revoke_source_app_writes >> backup
    retention = record_retention()
    backup >> retention
    record_finalized(revoke_source_app_writes.output, retention) >> write_status_report()

finalize()
