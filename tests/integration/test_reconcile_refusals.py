"""A repair the secondary refuses is reported with the constraint that refused it, so an operator
reading a failed run knows where to look; once the parent is level the child repairs."""

from __future__ import annotations

import pytest

from migration_engine.manifest import Table
from migration_engine.reconcile import Direction, reconcile_table

pytestmark = pytest.mark.integration

CONTROL = "migration_control"


def table(name: str) -> Table:
    return Table(service="wallet", name=name, key=("id",), sensitive=(), source_schema="public", target_schema="wallet")


def test_a_child_refused_for_its_missing_parent_names_the_constraint_then_repairs(estate):
    source, target = estate.source_endpoint("wallet"), estate.target_endpoint()
    for endpoint, schema in ((source, "public"), (target, "wallet")):
        with endpoint.connect(autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.execute(f"CREATE TABLE {schema}.parents (id int PRIMARY KEY)")
            conn.execute(f"CREATE TABLE {schema}.children (id int PRIMARY KEY, parent_id int NOT NULL "
                         f"CONSTRAINT children_parent_fk REFERENCES {schema}.parents (id))")
    with source.connect(autocommit=True) as conn:
        conn.execute("INSERT INTO public.parents VALUES (1)")
        conn.execute("INSERT INTO public.children VALUES (10, 1), (11, 1)")

    def reconcile(name: str, run_id: str) -> dict:
        return reconcile_table(table(name), source, target, run_id=run_id, direction=Direction.SOURCE_TO_TARGET,
                               control_schema=CONTROL, grace_seconds=0).summary()

    refused = reconcile("children", "child-first")
    assert refused["refused"] == 2 and refused["repaired"] == 0
    assert refused["refused_by"] == {"upsert refused by constraint children_parent_fk": 2}
    assert reconcile("parents", "parent")["repaired"] == 1
    again = reconcile("children", "child-again")
    assert again["repaired"] == 2 and again["refused_by"] == {}
