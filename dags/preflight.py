"""
# preflight: prove the estate is ready, freeze the schema, back up the sources

**Runbook phase A** (section 5): freeze schema changes, strict persistence,
services running against the source database, source backup.

## What it checks
- Every source database, the target through its direct URL and the target
  through its pooler URL answer; each report shows the server version, TLS as
  the client sees it (and, on direct connections, as the server sees it), the
  role used and whether it is a superuser. The target role must be able to
  create schemas. A URL copied from the apps' env (`?sslmode=require&pgbouncer=true`)
  works as an Airflow connection URI: the `pgbouncer` flag is understood and
  removed before libpq sees it.
- Strict persistence, proven from the data: every expected state-store key is
  present in its service's source database and was updated within *max_age_hours*.

## What it changes
Nothing before every check has passed. Then:
- creates the control schema `migration_control` in the target (the phase ledger);
- records each source schema's fingerprint (the schema freeze) in the ledger;
  later phases fail, naming the change, if a source schema moves;
- writes a verified backup of each source database (`pg_dump` directory format,
  parallel jobs; read back with `pg_restore --list`; path, size and sha256 recorded
  in the ledger) under *backup_dir*, else the Variable `migration_backup_dir`,
  else `$MIGRATION_BACKUP_DIR`, else `$AIRFLOW_HOME/backups`;
- writes a summary (`preflight_summary.txt` and `.json`) under
  `$MIGRATION_ARTIFACT_DIR` (default `$AIRFLOW_HOME/artifacts`)`/preflight/<run_id>/`;
  the last task logs it and its path (Airflow 3 tasks cannot set their run's note);
- moves the ledger to `preflight_passed`.

## Re-running
Safe while the ledger is empty or at `preflight_passed`: the fingerprint is
recorded again, a verified backup taken for the same schema fingerprint is
reused (tick *fresh_backup* to take a new one), and the ledger does not move
twice. Once the schema baseline has run, preflight refuses: the frozen
fingerprint is what later phases compare against.

## When it fails
The failed task's log names the endpoint, key or schema. A stale or missing
state-store key means a service is not persisting (set `REQUIRE_DATABASE=true`
and let it write), or the window is too tight for a quiet service: raise
*max_age_hours* on purpose. Fix the cause and trigger again.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from migration_engine import dag_support as ds

DAG_ID = "preflight"
# Read when the file is parsed for the graph's shape only (tasks per service, the freshness Param's
# default); every task reads the manifest again when it runs.
MANIFEST = ds.manifest()


@dag(
    dag_id=DAG_ID,
    schedule=None,
    **ds.dag_arguments(
        __doc__, "phase-a", "manual",
        params={
            "max_age_hours": Param(
                None, type=["null", "number"], minimum=0, title="State-store freshness window (hours)",
                description=f"Each expected state-store key must have been updated within this many hours. "
                f"Empty: the manifest's {MANIFEST.state_store.max_age_hours:g} h.",
            ),
            # Nullable: a plain string Param with an empty default is a required field in the trigger form.
            "backup_dir": Param(
                None, type=["null", "string"], title="Backup folder",
                description="Where source backups go. Empty: Variable migration_backup_dir, else $MIGRATION_BACKUP_DIR, "
                "else $AIRFLOW_HOME/backups.",
            ),
            "backup_jobs": Param(
                2, type="integer", minimum=1, maximum=16, title="pg_dump parallel jobs",
                description="Parallel jobs for pg_dump --format=directory (each holds one source connection).",
            ),
            "fresh_backup": Param(
                False, type="boolean", title="Take a fresh backup",
                description="Take a new backup even when a verified one exists for the same schema fingerprint.",
            ),

        },
    ),
)
def preflight():
    from migration_engine.tasks import preflight as steps
    from migration_engine.tasks import shared

    @task
    def check_source(service: str) -> dict:
        return steps.check_source(DAG_ID, service)

    @task(pool=ds.TARGET_POOL)
    def check_target_direct() -> dict:
        return steps.check_target_direct(DAG_ID)

    @task(pool=ds.TARGET_POOL)
    def check_target_pooler() -> dict:
        return steps.check_target_pooler(DAG_ID)

    @task(pool=ds.TARGET_POOL)
    def check_ledger_phase() -> dict:
        """Read-only: the ledger may not exist yet, and nothing is created here."""
        from migration_engine.preflight import PREFLIGHT_ALLOWED

        return shared.read_ledger_phase(DAG_ID, PREFLIGHT_ALLOWED, "preflight")

    @task
    def check_state_store(service: str, params=None) -> list[dict]:
        return steps.check_state_store(DAG_ID, service, params["max_age_hours"])

    @task(pool=ds.TARGET_POOL)
    def prepare_ledger() -> None:
        steps.prepare_ledger(DAG_ID)

    @task
    def freeze_schema(service: str) -> dict:
        return steps.freeze_schema(DAG_ID, get_current_context()["run_id"], service)

    @task
    def back_up_source(service: str, params=None) -> dict:
        return steps.back_up_source(DAG_ID, get_current_context()["run_id"], service, params)

    @task(pool=ds.TARGET_POOL)
    def record_preflight_passed(endpoints: list, state_stores: dict, fingerprints: list, backups: list, params=None) -> str:
        return steps.record_preflight_passed(
            DAG_ID, get_current_context()["run_id"], params["max_age_hours"], endpoints=endpoints,
            state_stores=state_stores, fingerprints=fingerprints, backups=backups,
        )

    services = [s.name for s in MANIFEST.services]
    endpoint_checks = {s: check_source.override(task_id=f"check_{s}_source", pool=ds.source_pool(s))(s) for s in services}
    direct, pooler = check_target_direct(), check_target_pooler()
    phase = check_ledger_phase()
    [*endpoint_checks.values(), direct, pooler] >> phase

    store_checks = {s: check_state_store.override(task_id=f"check_{s}_state_store", pool=ds.source_pool(s))(s) for s in services}
    ledger_ready = prepare_ledger()
    phase >> list(store_checks.values()) >> ledger_ready

    fingerprints, backups = [], []
    for s in services:
        frozen = freeze_schema.override(task_id=f"freeze_{s}_schema", pool=ds.source_pool(s))(s)
        backed_up = back_up_source.override(task_id=f"back_up_{s}_source", pool=ds.source_pool(s))(s)
        ledger_ready >> frozen >> backed_up
        fingerprints.append(frozen)
        backups.append(backed_up)

    record_preflight_passed(
        endpoints=[*endpoint_checks.values(), direct, pooler],
        state_stores=store_checks,
        fingerprints=fingerprints,
        backups=backups,
    )


preflight()
