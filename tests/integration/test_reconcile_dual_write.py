"""Reconciliation beside a live, lossy dual-write: no repair ever puts an older
row over a newer one, and once the writers stop a final run makes the target
equal the source, table for table."""

from __future__ import annotations

import time

import pytest
from psycopg import sql

from migration_engine.canonical import pin_output_settings
from migration_engine.reconcile import Direction, reconcile_table
from migration_engine.simulator import DualWriteSimulator, SimulatorConfig, TargetFaults, simulated_table
from tests.integration.backfill_support import create_schema

pytestmark = pytest.mark.integration

# The reconciler's sessions, which the version guards below watch.
REPAIRER = "credity-migration-reconcile"

CONTROL = "migration_control"
# Reconcile passes run while the lossy writer writes: at least this many, and for at least this long.
LIVE_PASSES = 3
LIVE_SECONDS = 8
# Any update by the reconciler that lowers a row's version is recorded here.
GUARD_FUNCTION = """
CREATE FUNCTION wallet.record_version_regression() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE old_version text; new_version text;
BEGIN
  IF current_setting('application_name') = TG_ARGV[1] THEN
    EXECUTE format('SELECT ($1).%1$I::text, ($2).%1$I::text', TG_ARGV[0]) INTO old_version, new_version USING OLD, NEW;
    IF TG_ARGV[2] = 'payload' THEN
      old_version := (old_version::jsonb ->> 'version'); new_version := (new_version::jsonb ->> 'version');
    END IF;
    IF new_version IS NOT NULL AND old_version IS NOT NULL AND
       (CASE WHEN TG_ARGV[2] IN ('int', 'payload') THEN new_version::numeric < old_version::numeric
             ELSE new_version::timestamptz < old_version::timestamptz END) THEN
      INSERT INTO wallet.version_regressions VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, old_version, new_version);
    END IF;
  END IF;
  RETURN NEW;
END $$
"""


@pytest.fixture(scope="module")
def credity(estate, manifest, sources):
    create_schema(estate, manifest)
    return sources, estate.target_endpoint()


def reconcile_all(manifest, sources, target, run_id: str, grace: float) -> dict:
    return {t.qualified: reconcile_table(t, sources[t.service], target.named(REPAIRER), run_id=run_id, direction=Direction.SOURCE_TO_TARGET,
                                         control_schema=CONTROL, cap=100_000, grace_seconds=grace)
            for t in manifest.tables}


def install_version_guards(manifest, sources, target) -> int:
    guarded = 0
    with target.connect(autocommit=True) as tgt:
        tgt.execute("CREATE TABLE wallet.version_regressions (table_name text, old_version text, new_version text)")
        tgt.execute(GUARD_FUNCTION)
        for table in manifest.tables:
            if table.name == manifest.state_store.table:
                column, kind = "payload", "payload"
            else:
                with sources[table.service].connect(autocommit=True) as src:
                    version = simulated_table(src, table).version
                if version is None or version.type_name == "jsonb":
                    continue
                column, kind = version.name, ("ts" if version.type_name.startswith("timestamp") else "int")
            tgt.execute(sql.SQL("CREATE TRIGGER guard_version BEFORE UPDATE ON {} FOR EACH ROW "
                                "EXECUTE FUNCTION wallet.record_version_regression({}, {}, {})").format(
                sql.Identifier(*table.target_ident), sql.Literal(column), sql.Literal(REPAIRER), sql.Literal(kind)))
            guarded += 1
    return guarded


def table_digest(conn, ident, columns) -> tuple:
    with conn.transaction():
        pin_output_settings(conn)
        return conn.execute(sql.SQL("SELECT count(*), md5(coalesce(string_agg(ROW({})::text, '|' ORDER BY ROW({})::text), '')) FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.Identifier(*ident))).fetchone()


def test_reconcile_beside_a_lossy_dual_write_never_goes_back_in_time_and_converges(manifest, credity):
    sources, target = credity
    seed = DualWriteSimulator(manifest, sources, target, SimulatorConfig(rate_per_s=2000, duration_s=None, max_writes=600,
                                                                       insert_share=0.9, update_share=0.1, seed=1)).run()
    assert seed.total > 500 and seed.secondary.get("dropped", 0) == 0
    assert all(r.clean for r in reconcile_all(manifest, sources, target, "seeded", grace=0).values())
    assert install_version_guards(manifest, sources, target) >= 10

    simulator = DualWriteSimulator(manifest, sources, target, SimulatorConfig(
        rate_per_s=150, duration_s=None, max_writes=10**9,
        faults=TargetFaults(drop=0.02, delay=0.01, reorder=0.01, delay_seconds=0.3), seed=2,
    )).start()
    # Passes, not seconds, decide when the writer stops: on a loaded machine one pass can outlast any fixed window.
    started = time.monotonic()
    repaired_while_running = in_flight_seen = passes = 0
    while passes < LIVE_PASSES or time.monotonic() - started < LIVE_SECONDS:
        results = reconcile_all(manifest, sources, target, f"live-{passes}", grace=0.3)
        repaired_while_running += sum(r.repaired for r in results.values())
        in_flight_seen += sum(r.in_flight for r in results.values())
        passes += 1
    simulator.stop()
    report = simulator.join()
    assert report.total > 500 and report.secondary["dropped"] > 0, report.as_dict()
    assert repaired_while_running > 0

    time.sleep(0.5)
    final = reconcile_all(manifest, sources, target, "final", grace=0)
    assert not any(r.cap_exceeded or r.unrepaired for r in final.values()), [r.summary() for r in final.values() if r.unrepaired]
    assert all(r.clean for r in reconcile_all(manifest, sources, target, "after-final", grace=0).values())

    with target.connect(autocommit=True) as tgt:
        assert tgt.execute("SELECT * FROM wallet.version_regressions").fetchall() == []
        for table in manifest.tables:
            with sources[table.service].connect(autocommit=True) as src:
                columns = [c.name for c in simulated_table(src, table).columns]
                assert table_digest(src, table.source_ident, columns) == table_digest(tgt, table.target_ident, columns), table.qualified


def test_the_writer_reconnects_to_the_target_after_its_session_is_terminated(manifest, credity):
    """As an app's pool would: a terminated target session (a restart, a failover) must not leave the
    writer on stale flags for the rest of a run."""
    from migration_engine.simulator import APPLICATION_NAME as WRITER

    sources, target = credity
    simulator = DualWriteSimulator(manifest, sources, target, SimulatorConfig(
        rate_per_s=100, duration_s=None, max_writes=10**9, seed=3)).start()
    time.sleep(1.0)
    with target.connect(autocommit=True) as conn:
        killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                              (WRITER,)).fetchone()[0]
    assert killed == 1
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with target.connect(autocommit=True) as conn:
            back = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (WRITER,)).fetchone()[0]
        if back:
            break
        time.sleep(0.2)
    applied_before = simulator.report.secondary["applied"]
    time.sleep(1.0)
    simulator.stop()
    report = simulator.join()
    assert back == 1 and report.reconnects == 1, report.as_dict()
    assert report.secondary["applied"] > applied_before, "dual-writes reach the target again"
