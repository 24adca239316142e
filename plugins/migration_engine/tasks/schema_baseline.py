"""Steps of the schema_baseline DAG as plain functions over Airflow connections: the freeze gate, one
schema step applied to the target, and the comparison with the live source."""

from __future__ import annotations

from migration_engine import dag_support as ds

# The phases schema_baseline may start from: after preflight, or again after an earlier baseline.
BASELINE_ALLOWED = {"preflight_passed", "schema_applied"}


def check_source_unchanged(dag_id: str, service: str) -> str:
    from migration_engine.preflight import check_fingerprint_unchanged

    conns = ds.Connections(dag_id)
    with conns.target(autocommit=False) as target, conns.source(service, autocommit=False) as source:
        return check_fingerprint_unchanged(target, source, ds.manifest(), service)


def apply_step(dag_id: str, step_name: str) -> list[str]:
    from migration_engine.schema_sql import apply_step

    with ds.Connections(dag_id).target() as conn:
        return apply_step(conn, ds.manifest(), step_name, "target")


def check_schema_matches(dag_id: str, service: str) -> str:
    from migration_engine.catalog import check_schema_matches_source

    conns = ds.Connections(dag_id)
    with conns.target(autocommit=False) as target, conns.source(service, autocommit=False) as source:
        return check_schema_matches_source(source, target, ds.manifest(), service, deferred=True)
