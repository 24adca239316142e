"""
# cutover: flip the read path to the target

**Runbook phase E** (section 5): after the dual-write soak, the apps start
reading from the target. Dual-write stays on, so a rollback loses nothing.

## What it does, in order
1. Refuses unless *confirm* is exactly `CUTOVER` (before any database is touched).
2. Gates, each naming what failed: ledger phase is `soak`; the source schema
   still matches the preflight fingerprint. Two gates **wait** (sensors that
   free their worker slot between checks) for up to *gate_wait_hours*: the soak
   lasting *min_soak_hours*, and the last *min_clean_reconciles* finished
   reconciliation runs being clean, each over every table, source → target, with
   no table task errored. A soak that cannot be long enough within
   the wait refuses at once. Then the target must answer through its direct URL
   and through the pooler.
3. A final reconciliation pass (source → target), at most *max_drift_rows*
   rows left unrepaired.
4. **Evidence, then a human decision.** `gather_cutover_evidence` collects the
   soak hours, the clean streak, the final drift per table, the sequence
   positions (source, target now, target after the sync) and which services'
   read path will flip. `approve_cutover` shows it under **Required Actions**
   (Browse → Required Actions, or the task's page) and waits up to 4 hours for
   *Approve* or *Reject*. Reject skips every later step; no answer in time fails
   the task. Either way nothing below runs. A dry run asks too, so the evidence
   can be rehearsed.
5. The run takes the ledger's fence (`claim_fence`): a reconcile run started
   before refuses its next write, and none may start until this run moves the
   ledger (to `cut_over`, or to `rolled_back` after a failed smoke check), so no
   repair writes the side the apps are moving to. Sequences in the target set at
   or above the source's plus *sequence_gap*;
   the xmin horizon of every source and the target recorded (`cutover_window`),
   so a rollback repairs only what the failed window explains.
6. The read path flipped to the target with `include/sql/cutover/set_read_path.sql`,
   rendered by Airflow: the task's **Rendered Template** tab shows the statements
   that ran and their bound values. If the flip fails after it started (its retries
   spent), it may have committed: `record_flip_outcome_unknown` moves the ledger to
   `flip_unknown` and the run fails; trigger rollback, which accepts that state.
7. Smoke checks through the pooler: a rolled-back write probe and the critical
   queries of each service (`include/sql/smoke/`).
8. The drain: after *app_switch_seconds*, when every app writes the target first,
   one more pass source → target carries over the rows the source wrote since the
   final reconciliation began and the target has not written since the flip (a
   second write lost in those last minutes would otherwise be overwritten by the
   target → source reconciliation). Rows the apps wrote on the target since the
   flip are left alone; other differences are reported and left to the target's way.
   Its scans are paced by the target's health, the apps' primary by then.
9. Ledger `soak → cut_over`. If any smoke check fails (a service the pooler
   does not let connect fails its checks too), the read path goes back to the
   source, the ledger records `rolled_back`, and the run ends failed.

With *dry_run* on (the default) every statement is rendered and logged and
nothing is changed in either database.

## Re-running
Safe: each step leaves things as one clean run would (the flag store and the
ledger only change when their value differs). A run refused by a gate changed
nothing.

## When it fails
A gate failure: fix what it names and trigger again. A smoke failure: the
read path is already back on the source; read the smoke task's log, fix the
target, let the hourly reconcile run clean again, then retry the cutover.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param, TriggerRule, dag, get_current_context, task, teardown

from migration_engine import checks
from migration_engine import dag_support as ds
from migration_engine.rendered_sql import RenderedSqlOperator

DAG_ID = "cutover"
CONFIRM_WORD = "CUTOVER"


def _run_id() -> str:
    return get_current_context()["run_id"]


@dag(
    dag_id=DAG_ID,
    schedule=None,
    **ds.dag_arguments(
        __doc__, "phase-e", "manual",
        params={
            "confirm": ds.confirm_param(CONFIRM_WORD, "cut over"),
            "dry_run": ds.dry_run_param(),
            "max_drift_rows": Param(
                0, type="integer", minimum=0, maximum=1_000_000, title="Max drift rows",
                description="Rows the final reconciliation may leave unrepaired (rows in flight excluded).",
            ),
            "min_soak_hours": Param(
                24, type="number", minimum=0, maximum=8760, title="Minimum soak (hours)",
                description="How long the ledger must have been in soak (the runbook says 24 to 72 h).",
            ),
            "min_clean_reconciles": Param(
                3, type="integer", minimum=0, maximum=10_000, title="Clean reconciles required",
                description="Consecutive clean reconciliation runs (source to target, every table, no table task errored) required before cutover.",
            ),
            "gate_wait_hours": ds.gate_wait_param(),
            "reachable_wait_seconds": Param(
                120, type="integer", minimum=0, maximum=3600, title="Wait for the target (s)",
                description="How long the cutover waits for the target's direct URL and its pooler to answer before it "
                            "refuses (nothing changed yet).",
            ),
            "sequence_gap": Param(
                1000, type="integer", minimum=0, maximum=1_000_000_000, title="Sequence safety gap",
                description="Target sequences are set at least this far above the source's, so inserts never collide.",
            ),
            "repair_cap": Param(
                1000, type="integer", minimum=0, maximum=10_000_000, title="Repair cap",
                description="The final reconciliation repairs at most this many rows per table; above it, nothing is repaired and the cutover stops.",
            ),
            "app_switch_seconds": Param(
                30, type="number", minimum=0, maximum=3600, title="Apps' switch time (s)",
                description="How long the apps take to see the flipped read path (their flag refresh). The drain "
                            "waits this long before carrying the source's last writes to the target.",
            ),
            "max_latency_increase": ds.latency_budget_param(
                "Apps' latency budget", "the final reconciliation before the flip and the drain after it rest "
                "between slices of their hash scans, by the sources' health before the flip and the target's after"),
        },
    ),
)
def cutover():
    from migration_engine.tasks import cutover as steps
    from migration_engine.tasks import shared

    @task
    def check_confirmation(params=None):
        checks.check_confirmation(params["confirm"], CONFIRM_WORD, DAG_ID)

    @task(pool=ds.TARGET_POOL)
    def check_ledger_phase():
        return ds.require_phase(DAG_ID, {"soak"}, "cutover")

    @task.sensor(pool=ds.TARGET_POOL, **ds.GATE_SENSOR)
    def wait_for_soak_elapsed(params=None):
        return ds.poke(shared.wait_for_time_in_phase(
            DAG_ID, "soak", params["min_soak_hours"], wait_left_hours=ds.gate_wait_left(params["gate_wait_hours"])))

    wait_for_clean_reconciles = shared.clean_reconciles_sensor(DAG_ID, "source_to_target")

    @task
    def check_source_schema_unchanged():
        return shared.check_source_schema_unchanged(DAG_ID)

    # The Param bounds the wait; the sensor's own timeout is only the outer limit of that Param.
    @task.sensor(poke_interval=5, timeout=timedelta(hours=1).total_seconds(), mode="poke")
    def wait_for_target_reachable(params=None, ti=None):
        return steps.target_reachable(DAG_ID, started_at=ti.start_date, wait_seconds=params["reachable_wait_seconds"])

    @task(pool=ds.TARGET_POOL, execution_timeout=timedelta(hours=1))
    def run_final_reconcile(params=None):
        return steps.final_reconcile(DAG_ID, _run_id(), dry_run=params["dry_run"], cap=params["repair_cap"],
                                     max_unrepaired=params["max_drift_rows"],
                                     max_latency_increase=params["max_latency_increase"])

    @task(pool=ds.TARGET_POOL)
    def gather_cutover_evidence(soak: dict, streak: dict, final: dict, params=None):
        return steps.gather_evidence(DAG_ID, soak, streak, final, sequence_gap=params["sequence_gap"],
                                     dry_run=params["dry_run"])

    approve_cutover = ApprovalOperator(
        task_id="approve_cutover",
        subject="{{ 'Dry run: cut over' if params.dry_run else 'Cut over' }}? The apps start reading from the target",
        body="{{ ti.xcom_pull(task_ids='gather_cutover_evidence')['summary'] }}",
        **ds.APPROVAL,
    )

    @task(pool=ds.TARGET_POOL)
    def claim_fence(params=None):
        return shared.claim_fence(DAG_ID, _run_id(), "cutover: sequences, the read path to the target, smoke checks",
                                 dry_run=params["dry_run"])

    @task(pool=ds.TARGET_POOL)
    def sync_sequences(params=None):
        return shared.sync_sequences(DAG_ID, gap=params["sequence_gap"], dry_run=params["dry_run"])

    @task(pool=ds.TARGET_POOL)
    def record_cutover_window(params=None):
        return steps.record_cutover_window(DAG_ID, _run_id(), dry_run=params["dry_run"])

    @task(pool=ds.TARGET_POOL)
    def take_flip_horizon() -> int:
        return steps.target_horizon(DAG_ID)

    flip_read_path_to_target = RenderedSqlOperator(
        task_id="flip_read_path_to_target", pool=ds.TARGET_POOL,
        plan=partial(shared.plan_read_path, "target"), run=shared.apply_read_path,
    )

    # Only when the flip failed (retries spent): did it start, and so may it have committed?
    @task(pool=ds.TARGET_POOL, trigger_rule=TriggerRule.ONE_FAILED)
    def record_flip_outcome_unknown(params=None):
        steps.record_flip_outcome_unknown(DAG_ID, _run_id(), dry_run=params["dry_run"])

    @task(pool=ds.TARGET_POOL)
    def run_smoke_checks():
        return shared.smoke_checks(DAG_ID, layout="target")

    @task.branch
    def choose_after_smoke(smoke: dict):
        return "drain_old_primary" if smoke["ok"] else "roll_back_read_path"

    @task(pool=ds.TARGET_POOL, execution_timeout=timedelta(hours=1))
    def drain_old_primary(final: dict, flip_horizon: int, params=None) -> dict:
        return steps.drain_old_primary(
            DAG_ID, _run_id(), source_horizons=final["source_horizons"], flip_horizon=flip_horizon,
            wait_seconds=params["app_switch_seconds"], cap=params["repair_cap"], dry_run=params["dry_run"],
            max_latency_increase=params["max_latency_increase"])

    @task(pool=ds.TARGET_POOL)
    def record_cut_over(smoke: dict, params=None):
        return steps.record_cut_over(DAG_ID, _run_id(), smoke, dry_run=params["dry_run"])

    roll_back_read_path = RenderedSqlOperator(
        task_id="roll_back_read_path", pool=ds.TARGET_POOL,
        plan=partial(shared.plan_read_path, "source"), run=shared.apply_read_path,
    )

    @task(pool=ds.TARGET_POOL)
    def record_rolled_back(smoke: dict, params=None):
        return steps.record_rolled_back(DAG_ID, _run_id(), smoke, dry_run=params["dry_run"])

    @task
    def fail_after_rollback(smoke: dict):
        steps.fail_after_rollback(smoke)

    @teardown
    @task(pool=ds.TARGET_POOL)
    def write_status_report() -> str:
        return ds.write_status_report(DAG_ID)

    phase = check_ledger_phase()
    check_confirmation() >> phase
    soak, streak = wait_for_soak_elapsed(), wait_for_clean_reconciles()
    reachable = wait_for_target_reachable()
    phase >> [soak, streak, check_source_schema_unchanged()] >> reachable
    final = run_final_reconcile()
    reachable >> final
    gather_cutover_evidence(soak, streak, final) >> approve_cutover
    flip_horizon = take_flip_horizon()
    approve_cutover >> claim_fence() >> sync_sequences() >> record_cutover_window() >> flip_horizon \
        >> flip_read_path_to_target
    smoke = run_smoke_checks()
    flip_read_path_to_target >> smoke
    unknown = record_flip_outcome_unknown()
    flip_read_path_to_target >> unknown
    branch = choose_after_smoke(smoke)
    drained = drain_old_primary(final, flip_horizon)
    cut_over = record_cut_over(smoke)
    branch >> drained >> cut_over
    failed = fail_after_rollback(smoke)
    branch >> roll_back_read_path >> record_rolled_back(smoke) >> failed
    [cut_over, failed, unknown] >> write_status_report()


cutover()
