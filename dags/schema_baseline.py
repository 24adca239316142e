"""
# schema_baseline: apply the target schema in the runbook's order, then prove it matches

**Runbook phase B** (sections 5 and 6): provision and baseline the schema on the
target, one schema per service (section 10, item 2).

## What it changes
Over the target's **direct** URL, as the database's owner role (no superuser),
one task per schema step of the manifest, in order: service schemas,
extensions, issuer enums, foundational tables, issuer dependency chain, wallet
tables, recruiter tables, state-store tables. Each step runs the templated
files of `include/sql/schema/<step folder>/`; every file is safe to run twice.

The step `post_load_constraints` (unique keys and foreign keys, added NOT VALID
then VALIDATEd) is **not** run here: the `backfill` DAG runs it after loading,
so the copy pays no per-row constraint checks and every row is still checked.

## The gate
Before any DDL, each source schema must still equal its fingerprint frozen by
`preflight`. After the DDL, for every mapped table the target schema must match
the live source: columns, types, nullability, defaults, primary keys, checks,
enum values (unique and foreign keys are compared after `post_load_constraints`).
Each difference is named, e.g. `wallet.users: column phone_number (text) exists in
source, missing in target`. Only then does the ledger move to `schema_applied`.

## Re-running
Safe while the ledger is at `preflight_passed` or `schema_applied`: every file
is idempotent (a second run changes nothing in the catalog) and the ledger does
not move twice.

## When it fails
- *source schema changed since preflight*: the freeze was broken; carry the
  change into `include/sql/schema`, run `preflight` again, then this DAG.
- *does not match the live source*: fix the named table or enum in
  `include/sql/schema` (or drop the wrongly created object in the target), then
  trigger again; nothing after the failing step has run.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from migration_engine import dag_support as ds

DAG_ID = "schema_baseline"
# Read when the file is parsed for the graph's shape only (tasks per service and per schema step); every
# task reads the manifest again when it runs.
MANIFEST = ds.manifest()


@dag(dag_id=DAG_ID, schedule=None, **ds.dag_arguments(__doc__, "phase-b", "manual"))
def schema_baseline():
    from migration_engine.tasks import schema_baseline as steps
    from migration_engine.tasks import shared

    @task(pool=ds.TARGET_POOL)
    def check_ledger_phase() -> dict:
        return shared.read_ledger_phase(DAG_ID, steps.BASELINE_ALLOWED, "schema_baseline")

    @task
    def check_source_unchanged(service: str) -> str:
        return steps.check_source_unchanged(DAG_ID, service)

    @task(pool=ds.TARGET_POOL)
    def apply_step(step_name: str) -> list[str]:
        return steps.apply_step(DAG_ID, step_name)

    @task
    def check_schema_matches(service: str) -> str:
        return steps.check_schema_matches(DAG_ID, service)

    @task(pool=ds.TARGET_POOL)
    def record_schema_applied(digests: dict) -> bool:
        return ds.advance_phase(DAG_ID, get_current_context()["run_id"], "schema_applied", {"target_schema_sha256": digests})

    services = [s.name for s in MANIFEST.services]
    phase = check_ledger_phase()
    unchanged = [check_source_unchanged.override(task_id=f"check_{s}_source_unchanged", pool=ds.source_pool(s))(s) for s in services]
    phase >> unchanged

    previous = unchanged
    for step in MANIFEST.schema_steps:
        if step.after_backfill:
            continue
        applied = apply_step.override(task_id=f"apply_{step.name}")(step.name)
        previous >> applied
        previous = applied

    gates = {s: check_schema_matches.override(task_id=f"check_{s}_schema_matches_source", pool=ds.source_pool(s))(s) for s in services}
    previous >> list(gates.values())
    record_schema_applied(gates)


schema_baseline()
