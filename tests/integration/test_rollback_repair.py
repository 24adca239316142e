"""Rollback's source repair is confined to the failed window, and sequences go back.

After a cutover, the apps write on the target with their dual-writes to the source
lost: a new row, a changed row, a row changed again later on the source, and a
row later deleted on the source; they draw ids from the target's sequences. The
rollback carries the sequences back. After it the apps write on the source again
(their dual-writes to the target lost). The confirmed repair then brings over
what the failed window wrote and nothing else: the source's own later writes and
deletions are kept and listed as held back (before, the target was taken as the
truth for every row and put them back). A dry run of the rollback changes nothing.
"""

from __future__ import annotations

import pytest

from tests.integration.lifecycle_support import (
    flags,
    phase,
    snapshot,
    target,
)

pytestmark = [pytest.mark.integration, pytest.mark.airflow]


@pytest.fixture
def cut_over(soaking, estate, airflow_home):
    """A fresh cutover by the DAG (its window recorded), whatever the previous test left."""
    cut = airflow_home.run_dag("cutover", {"confirm": "CUTOVER", "dry_run": False, "min_soak_hours": 0,
                                           "min_clean_reconciles": 1}, extra_env=estate.airflow_env())
    assert cut.succeeded, cut.output[-3000:]
    return estate


def recruiter_source(estate, query: str, params=()):
    with estate.source_endpoint("recruiter").connect() as conn:
        return conn.execute(query, params).fetchall()


def test_a_dry_run_rollback_changes_nothing(cut_over, estate, manifest, run):
    before = snapshot(estate, manifest)
    dry = run("rollback", {"confirm": "ROLLBACK"})
    assert dry.succeeded, dry.output[-3000:]
    assert "DRY RUN, not executed" in dry.output
    assert snapshot(estate, manifest) == before
    assert phase(estate) == "cut_over"


def test_the_source_repair_keeps_to_the_failed_window_and_sequences_go_back(cut_over, estate, manifest, run):
    ids = [row[0] for row in recruiter_source(estate, "SELECT id FROM public.users ORDER BY id LIMIT 3")]
    changed, changed_twice, deleted = ids
    # The failed window: the apps on the target, their dual-writes to the source lost.
    with target(estate) as conn:
        conn.execute("INSERT INTO recruiter.users (id, username, password) VALUES ('in-the-window', 'w', 'x')")
        conn.execute("UPDATE recruiter.users SET password = 'window' WHERE id = ANY(%s)", ([changed, changed_twice],))
        drawn = conn.execute("INSERT INTO wallet.activities (user_id, type, description) VALUES (1, 't', 'window') "
                             "RETURNING id").fetchone()[0]

    rolled = run("rollback", {"confirm": "ROLLBACK", "dry_run": False})
    assert rolled.succeeded, rolled.output[-3000:]
    assert phase(estate) == "rolled_back"
    assert {f["primary_side"] for f in flags(estate, manifest).values()} == {"source"}
    with estate.source_endpoint("wallet").connect() as conn:
        next_id = conn.execute("SELECT nextval(pg_get_serial_sequence('public.activities', 'id'))").fetchone()[0]
    assert next_id > drawn, "the source's sequence must be carried past the ids drawn on the target"

    # Back on the source: the apps' own writes there, their dual-writes to the target lost.
    with estate.source_endpoint("recruiter").connect(autocommit=True) as conn:
        conn.execute("UPDATE public.users SET password = 'source, later' WHERE id = %s", (changed_twice,))
        conn.execute("DELETE FROM public.users WHERE id = %s", (deleted,))

    repaired = run("rollback", {"confirm": "ROLLBACK", "dry_run": False, "repair_source": "REPAIR_SOURCE"})
    assert repaired.succeeded, repaired.output[-3000:]
    held = dict(recruiter_source(estate, "SELECT id, password FROM public.users WHERE id = ANY(%s)",
                                 ([changed, changed_twice, deleted, "in-the-window"],)))
    assert held == {"in-the-window": "x", changed: "window", changed_twice: "source, later"}, held
    # The repair's totals, as Airflow logs a task's return value.
    assert "'held_back': 2" in repaired.output, repaired.output[-3000:]
