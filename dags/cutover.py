"""
# cutover: flip the read path to the target

**Runbook phase E** (section 5): after the dual-write soak, the apps start
reading from the target. Dual-write stays on, so a rollback loses nothing.

## What it does, in order
1. Refuses unless *confirm* is exactly `CUTOVER` (before any database is touched).
2. Gates, each naming what failed: ledger phase is `soak`; the soak has lasted
   *min_soak_hours*; the last *min_clean_reconciles* finished reconciliation runs
   were clean, each over every table, source → target, with no table task
   errored; the source schema still matches the preflight fingerprint; the target
   answers through its direct URL and through the pooler (a sensor).
3. A final reconciliation pass (source → target), at most *max_drift_rows*
   rows left unrepaired.
4. Sequences in the target set at or above the source's plus *sequence_gap*.
5. The read path flipped to the target with `include/sql/cutover/set_read_path.sql`.
6. Smoke checks through the pooler: a rolled-back write probe and the critical
   queries of each service (`include/sql/smoke/`).
7. Ledger `soak → cut_over`. If any smoke check fails (a service the pooler
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

from airflow.sdk import Param, dag, get_current_context, task, teardown

from migration_engine import dag_support as ds

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
            "sequence_gap": Param(
                1000, type="integer", minimum=0, maximum=1_000_000_000, title="Sequence safety gap",
                description="Target sequences are set at least this far above the source's, so inserts never collide.",
            ),
            "repair_cap": Param(
                1000, type="integer", minimum=0, maximum=10_000_000, title="Repair cap",
                description="The final reconciliation repairs at most this many rows per table; above it, nothing is repaired and the cutover stops.",
            ),

        },
    ),
)
def cutover():
    from migration_engine import phase_steps as steps

    @task
    def check_confirmation(params=None):
        steps.check_confirmation(params["confirm"], CONFIRM_WORD, DAG_ID)

    @task(pool=ds.TARGET_POOL)
    def check_ledger_phase():
        return ds.require_phase(DAG_ID, {"soak"}, "cutover")

    @task(pool=ds.TARGET_POOL)
    def check_soak_elapsed(params=None):
        return steps.time_in_phase(DAG_ID, "soak", params["min_soak_hours"])

    @task(pool=ds.TARGET_POOL)
    def check_recent_reconciles_clean(params=None):
        from migration_engine.reconcile.engine import Direction

        return steps.recent_reconciles_clean(DAG_ID, params["min_clean_reconciles"], Direction.SOURCE_TO_TARGET)

    @task
    def check_source_schema_unchanged():
        return steps.check_source_schema_unchanged(DAG_ID)

    @task.sensor(poke_interval=10, timeout=timedelta(minutes=2).total_seconds(), mode="poke")
    def wait_for_target_reachable():
        return steps.target_reachable(DAG_ID)

    @task(pool=ds.TARGET_POOL, execution_timeout=timedelta(hours=1))
    def run_final_reconcile(params=None):
        from migration_engine.reconcile.engine import Direction

        return steps.reconcile_all(
            DAG_ID, _run_id(), Direction.SOURCE_TO_TARGET, dry_run=params["dry_run"],
            cap=params["repair_cap"], max_unrepaired=params["max_drift_rows"],
        )

    @task(pool=ds.TARGET_POOL)
    def sync_sequences(params=None):
        return steps.sync_sequences(DAG_ID, gap=params["sequence_gap"], dry_run=params["dry_run"])

    @task(pool=ds.TARGET_POOL)
    def flip_read_path_to_target(params=None):
        return steps.flip_read_path(DAG_ID, _run_id(), "target", dry_run=params["dry_run"])

    @task(pool=ds.TARGET_POOL)
    def run_smoke_checks():
        return steps.smoke_checks(DAG_ID, layout="target")

    @task.branch
    def choose_after_smoke(smoke: dict):
        return "record_cut_over" if smoke["ok"] else "roll_back_read_path"

    @task(pool=ds.TARGET_POOL)
    def record_cut_over(smoke: dict, params=None):
        if params["dry_run"]:
            steps.log.info("dry run: the ledger stays in soak")
            return False
        return ds.advance_phase(DAG_ID, _run_id(), "cut_over", {"smoke_checks": smoke["checks"]})

    @task(pool=ds.TARGET_POOL)
    def roll_back_read_path(smoke: dict, params=None):
        flags = steps.flip_read_path(DAG_ID, _run_id(), "source", dry_run=params["dry_run"])
        if not params["dry_run"]:
            # Through cut_over, so the ledger keeps the order: soak -> cut_over -> rolled_back.
            ds.advance_phase(DAG_ID, _run_id(), "cut_over", {"smoke_failed": smoke["failed"]})
            ds.advance_phase(DAG_ID, _run_id(), "rolled_back", {"reason": "smoke checks failed", "failed": smoke["failed"]})
        return flags

    @task
    def fail_after_rollback(smoke: dict):
        ds.refuse(f"cutover rolled back: {len(smoke['failed'])} smoke check(s) failed: {smoke['failed']}")

    @teardown
    @task(pool=ds.TARGET_POOL)
    def write_status_report() -> str:
        return ds.write_status_report(DAG_ID)

    gates = [check_ledger_phase(), check_soak_elapsed(), check_recent_reconciles_clean(), check_source_schema_unchanged()]
    confirmed = check_confirmation()
    reachable = wait_for_target_reachable()
    confirmed >> gates[0] >> gates[1:] >> reachable
    final = run_final_reconcile()
    reachable >> final
    sequences = sync_sequences()
    final >> sequences
    flipped = flip_read_path_to_target()
    sequences >> flipped
    smoke = run_smoke_checks()
    flipped >> smoke
    branch = choose_after_smoke(smoke)
    cut_over = record_cut_over(smoke)
    branch >> cut_over
    rolled_back = roll_back_read_path(smoke)
    failed = fail_after_rollback(smoke)
    branch >> rolled_back >> failed
    [cut_over, failed] >> write_status_report()


cutover()
