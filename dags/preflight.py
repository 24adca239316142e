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
    @task
    def check_source(service: str) -> dict:
        from migration_engine.preflight import check_manifest_tables, probe, snapshot_hold_estimate

        conns = ds.Connections(DAG_ID)
        report = probe(conns.source_endpoint(service))
        with conns.source(service, autocommit=False) as conn:
            report["manifest_tables"] = check_manifest_tables(conn, MANIFEST, service)
            report["snapshot_hold"] = snapshot_hold_estimate(conn, MANIFEST, service)
        return report

    @task(pool=ds.TARGET_POOL)
    def check_target_direct() -> dict:
        from migration_engine.preflight import probe

        conns = ds.Connections(DAG_ID)
        return probe(conns.target_endpoint, need_create_schema=True)

    @task(pool=ds.TARGET_POOL)
    def check_target_pooler() -> dict:
        from migration_engine.preflight import probe

        conns = ds.Connections(DAG_ID)
        return probe(conns.pooler_endpoint)

    @task(pool=ds.TARGET_POOL)
    def check_ledger_phase() -> dict:
        """Read-only: the ledger may not exist yet, and nothing is created here."""
        from migration_engine import ledger
        from migration_engine.preflight import PREFLIGHT_ALLOWED

        conns = ds.Connections(DAG_ID)
        with conns.target(autocommit=False) as conn:
            state = ledger.require_phase(conn, MANIFEST.control_schema, PREFLIGHT_ALLOWED, "preflight")
            # The epoch the run's ledger move is fenced by; no ledger yet is epoch 0, as a fresh one starts.
            epoch = ledger.current_epoch(conn, MANIFEST.control_schema).number if ledger.ledger_exists(
                conn, MANIFEST.control_schema) else 0
        return {"phase": state.phase, "since": state.at.isoformat() if state.at else None, "epoch": epoch}

    @task
    def check_state_store(service: str) -> list[dict]:
        from migration_engine.preflight import check_state_store

        conns = ds.Connections(DAG_ID)
        params = get_current_context()["params"]
        window = params["max_age_hours"] if params["max_age_hours"] is not None else MANIFEST.state_store.max_age_hours
        with conns.source(service, autocommit=False) as conn:
            return check_state_store(conn, MANIFEST, service, float(window))

    @task(pool=ds.TARGET_POOL)
    def prepare_ledger() -> None:
        from migration_engine import ledger

        conns = ds.Connections(DAG_ID)
        with conns.target(autocommit=False) as conn:
            ledger.ensure_ledger(conn, MANIFEST.control_schema)

    @task
    def freeze_schema(service: str) -> dict:
        from migration_engine.preflight import freeze_fingerprint

        conns = ds.Connections(DAG_ID)
        run_id = get_current_context()["run_id"]
        with conns.source(service, autocommit=False) as source, conns.target(autocommit=False) as target:
            return freeze_fingerprint(source, target, MANIFEST, service, DAG_ID, run_id)

    @task
    def back_up_source(service: str) -> dict:
        from pathlib import Path

        from airflow.sdk import Variable

        from migration_engine import backup, ledger
        from migration_engine.preflight import BACKUP_FACT, frozen_fingerprint

        conns = ds.Connections(DAG_ID)
        context = get_current_context()
        params = context["params"]
        root = Path(params["backup_dir"] or Variable.get("migration_backup_dir", default=None) or backup.default_backup_root())
        svc = MANIFEST.service(service)
        expected = [t.source_ident for t in svc.tables]
        key = BACKUP_FACT.format(service=service)
        # No target session stays open (idle in transaction) while pg_dump runs.
        with conns.target(autocommit=False) as target:
            fingerprint, _ = frozen_fingerprint(target, MANIFEST, service)
            previous = ledger.read_fact(target, MANIFEST.control_schema, key)
        record = backup.back_up(
            conns.source_endpoint(service), service, root / MANIFEST.migration, fingerprint.sha256, expected,
            jobs=params["backup_jobs"], previous=previous.value if previous else None, fresh=params["fresh_backup"],
        )
        with conns.target(autocommit=False) as target:
            ledger.record_fact(target, MANIFEST.control_schema, key, record.as_dict(), DAG_ID, context["run_id"])
        return record.as_dict()

    @task(pool=ds.TARGET_POOL)
    def record_preflight_passed(endpoints: list, state_stores: dict, fingerprints: list, backups: list) -> str:
        import logging

        from migration_engine import ledger
        from migration_engine.preflight import SUMMARY_FACT, summary_text, write_artifacts
        from migration_engine.resources import artifact_folder

        conns = ds.Connections(DAG_ID)
        context = get_current_context()
        params = context["params"]
        summary = {
            "migration": MANIFEST.migration,
            "run_id": context["run_id"],
            "endpoints": endpoints,
            "max_age_hours": params["max_age_hours"] if params["max_age_hours"] is not None else MANIFEST.state_store.max_age_hours,
            "state_store": state_stores,
            "fingerprints": fingerprints,
            "backups": backups,
        }
        json_path, text_path = write_artifacts(artifact_folder(DAG_ID, context["run_id"]), "preflight_summary", summary)
        with conns.target(autocommit=False) as conn:
            ledger.record_fact(conn, MANIFEST.control_schema, SUMMARY_FACT, summary, DAG_ID, context["run_id"])
        moved = ds.advance_phase(DAG_ID, context["run_id"], "preflight_passed", {
            "fingerprints": {f["service"]: f["sha256"] for f in fingerprints}, "summary": str(json_path)})
        log = logging.getLogger("migration.preflight")
        log.info("%s", summary_text(summary))
        log.info("summary written to %s and %s; ledger %s", text_path, json_path,
                 "moved to preflight_passed" if moved else "already at preflight_passed")
        return str(text_path)

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
