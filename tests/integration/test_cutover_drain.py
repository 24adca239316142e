"""The cutover's drain rules on real servers: after the flip, a source write the final
reconcile missed is carried to the target; the apps' newer write on the target is
never overwritten; an old difference is reported, not repaired."""

from __future__ import annotations

import pytest
from psycopg import sql

from migration_engine.manifest import Table
from migration_engine.reconcile import Direction, reconcile_table
from migration_engine.reconcile.scan import current_horizon

pytestmark = pytest.mark.integration

CONTROL = "migration_control"
TABLE = Table(service="wallet", name="drained", key=("id",), sensitive=(), source_schema="public", target_schema="wallet")


@pytest.fixture
def drained_table(estate):
    """The table ``drained``, level on both sides, made anew for each test; the (source, target) endpoints."""
    source, target = estate.source_endpoint("wallet"), estate.target_endpoint()
    with source.connect(autocommit=True) as src, target.connect(autocommit=True) as tgt:
        tgt.execute("CREATE SCHEMA IF NOT EXISTS wallet")
        for conn, schema in ((src, "public"), (tgt, "wallet")):
            ident = sql.Identifier(schema, "drained")
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
            conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, v text NOT NULL)").format(ident))
            conn.execute(sql.SQL("INSERT INTO {} SELECT g, 'level' FROM generate_series(1, 100) g").format(ident))
    return source, target


def values(endpoint, schema: str) -> dict[int, str]:
    with endpoint.connect(autocommit=True) as conn:
        return dict(conn.execute(sql.SQL("SELECT id, v FROM {}").format(sql.Identifier(schema, "drained"))).fetchall())


def test_the_drain_carries_missed_source_writes_and_never_overwrites_the_apps_on_the_target(drained_table):
    source, target = drained_table
    with source.connect(autocommit=True) as src, target.connect(autocommit=True) as tgt:
        # Before the final reconcile began: a difference no app write explains.
        tgt.execute("UPDATE wallet.drained SET v = 'changed on the target long ago' WHERE id = 1")
        source_horizon = current_horizon(src)
        # The old primary's last writes whose second write was lost.
        src.execute("INSERT INTO public.drained VALUES (101, 'inserted on the source, copy lost')")
        src.execute("UPDATE public.drained SET v = 'updated on the source, copy lost' WHERE id = 2")
        src.execute("UPDATE public.drained SET v = 'source, before the flip' WHERE id = 3")
        flip_horizon = current_horizon(tgt)
        # After the flip the apps write the target first: their writes win.
        tgt.execute("UPDATE wallet.drained SET v = 'the apps on the target, after the flip' WHERE id = 3")
        tgt.execute("INSERT INTO wallet.drained VALUES (102, 'inserted on the target, copy lost')")

    result = reconcile_table(TABLE, source, target, run_id="drain", direction=Direction.SOURCE_TO_TARGET,
                             control_schema=CONTROL, grace_seconds=0, horizon=source_horizon,
                             repair_unexplained=False, target_horizon=flip_horizon)

    landed = values(target, "wallet")
    assert landed[101] == "inserted on the source, copy lost"
    assert landed[2] == "updated on the source, copy lost"
    assert landed[3] == "the apps on the target, after the flip"
    assert landed[102] == "inserted on the target, copy lost"
    assert landed[1] == "changed on the target long ago"
    summary = result.summary()
    assert summary["repaired"] == 2, summary
    assert summary["in_flight"] == 2, summary
    assert summary["held_back"] == 1 and summary["unexplained_keys"] == ["1"], summary


def test_without_the_target_horizon_the_same_pass_would_overwrite_the_apps(drained_table):
    """The control: what the drain must not do, and what it does not do only because of the flip horizon."""
    source, target = drained_table
    with source.connect(autocommit=True) as src, target.connect(autocommit=True) as tgt:
        source_horizon = current_horizon(src)
        src.execute("UPDATE public.drained SET v = 'source, late' WHERE id = 50")
        tgt.execute("UPDATE wallet.drained SET v = 'the apps on the target' WHERE id = 50")

    reconcile_table(TABLE, source, target, run_id="no-drain", direction=Direction.SOURCE_TO_TARGET,
                    control_schema=CONTROL, grace_seconds=0, horizon=source_horizon, repair_unexplained=False)

    assert values(target, "wallet")[50] == "source, late"
