"""
# finalize: contract, the source stops taking writes

**Runbook phase F** (section 5) and section 11 (rollback window: 7 days minimum).

## What it does, in order
1. Refuses unless *confirm* is exactly `FINALIZE` (before any database is touched).
2. Gates: ledger phase is `cut_over` and has been for *min_cutover_hours*;
   the last *min_clean_reconciles* finished reconciliation runs were clean,
   each over every table, target → source, with no table task errored.
3. Each source is made read-only for its app role (`include/sql/finalize/revoke_app_*.sql`):
   the role keeps SELECT, loses INSERT, UPDATE, DELETE and TRUNCATE.
4. A final verified backup of each source (pg_dump, checked with pg_restore --list).
5. The rollback retention window (*retention_days*, at least 7) recorded in the ledger.
6. Ledger `cut_over → finalized`. Remove the dual-write code from the apps after sign-off.

With *dry_run* on (the default) every statement is rendered and logged and
nothing is changed.

## The reverse
Run `include/sql/finalize/restore_app_writes.sql` on each source database
(identifiers: the service's source schema and app role), as shown in the README.
Tables created after finalize are not covered: they get their owner's default
privileges.

## Re-running
Safe: revoking what is already revoked changes nothing; a backup of an
unchanged source is reused; the ledger does not move twice.

## When it fails
A gate names its reason. A failed backup leaves the ledger at `cut_over`:
check the backup location's free space and permissions, then clear the task.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task, teardown

from migration_engine import dag_support as ds

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
            "retention_days": Param(
                7, type="integer", minimum=7, maximum=3650, title="Rollback retention (days)",
                description="How long the source and its final backup are kept (runbook: 7 days minimum).",
            ),

        },
    ),
)
def finalize():
    from migration_engine import phase_steps as steps

    def run_id() -> str:
        return get_current_context()["run_id"]

    @task
    def check_confirmation(params=None):
        steps.check_confirmation(params["confirm"], CONFIRM_WORD, DAG_ID)

    @task(pool=ds.TARGET_POOL)
    def check_ledger_phase():
        return ds.require_phase(DAG_ID, {"cut_over", "finalized"}, "finalize")

    @task(pool=ds.TARGET_POOL)
    def check_cutover_soak(phase: dict, params=None):
        if phase["phase"] == "finalized":
            return {"already_finalized": True}
        return steps.time_in_phase(DAG_ID, "cut_over", params["min_cutover_hours"])

    @task(pool=ds.TARGET_POOL)
    def check_recent_reconciles_clean(params=None):
        from migration_engine.reconcile.engine import Direction

        return steps.recent_reconciles_clean(DAG_ID, params["min_clean_reconciles"], Direction.TARGET_TO_SOURCE)

    @task
    def revoke_source_app_writes(params=None):
        return steps.source_writes(DAG_ID, allowed=False, dry_run=params["dry_run"])

    @task
    def take_final_backup(params=None):
        return steps.final_backup(DAG_ID, run_id(), dry_run=params["dry_run"])

    @task(pool=ds.TARGET_POOL)
    def record_retention(params=None):
        if params["dry_run"]:
            steps.log.info("dry run: retention of %s days not recorded", params["retention_days"])
            return None
        return steps.record_retention(DAG_ID, run_id(), params["retention_days"])

    @task(pool=ds.TARGET_POOL)
    def record_finalized(revoked: dict, retention, params=None):
        if params["dry_run"]:
            steps.log.info("dry run: the ledger stays at cut_over")
            return False
        return ds.advance_phase(DAG_ID, run_id(), "finalized", {"revoked": revoked, "retention": retention})

    @teardown
    @task(pool=ds.TARGET_POOL)
    def write_status_report() -> str:
        return ds.write_status_report(DAG_ID)

    phase = check_ledger_phase()
    check_confirmation() >> phase
    gates = [check_cutover_soak(phase), check_recent_reconciles_clean()]
    phase >> gates[1]
    revoked = revoke_source_app_writes()
    gates >> revoked
    backup = take_final_backup()
    revoked >> backup
    retention = record_retention()
    backup >> retention
    record_finalized(revoked, retention) >> write_status_report()


finalize()
