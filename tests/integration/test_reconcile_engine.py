"""Reconciliation against real servers: drift of every kind found key for key,
confirmed, repaired within the cap, recorded in the ledger; dry runs write nothing."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from migration_engine.manifest import Table
from migration_engine.pacing import LoadBudget
from migration_engine.reconcile import (
    Direction,
    TableJob,
    clean_streak,
    engine,
    reconcile_table,
    reconcile_tables,
    record_outcome,
    scan,
)

pytestmark = pytest.mark.integration

CONTROL = "migration_control"

# Same shapes as the estate: serial int, uuid and varchar keys, a jsonb state store.
TABLES = {
    "r_int": ("id serial PRIMARY KEY, name text NOT NULL, amount numeric(12,2), seen_at timestamptz, secret text",
              "INSERT INTO {} (name, amount, seen_at, secret) SELECT 'n' || g, g / 7.0, "
              "'2024-01-01'::timestamptz + g * interval '1 minute', md5(g::text) FROM generate_series(1, 3000) g"),
    "r_uuid": ("id uuid PRIMARY KEY, kind text, meta jsonb, created timestamp",
               "INSERT INTO {} SELECT md5('u' || g)::uuid, 'k' || (g % 5), jsonb_build_object('g', g, 'f', g / 3.0), "
               "'2024-02-01'::timestamp + g * interval '1 second' FROM generate_series(1, 2500) g"),
    "r_text": ("id varchar PRIMARY KEY, username text NOT NULL",
               "INSERT INTO {} SELECT CASE WHEN g % 3 = 0 THEN upper(md5(g::text)) ELSE md5(g::text) END, 'user' || g "
               "FROM generate_series(1, 1200) g"),
    "credverse_state_store": ("service_key text PRIMARY KEY, payload jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now()",
                              "INSERT INTO {} VALUES ('wallet-storage', '{{\"users\": [1, 2], \"v\": 1}}', '2024-03-01'),"
                              " ('issuer-storage', '{{\"queue\": []}}', '2024-03-01'), ('recruiter-storage', '{{}}', '2024-03-01')"),
}
KEYS = {"credverse_state_store": ("service_key",)}


def table(name: str) -> Table:
    return Table(service="wallet", name=name, key=KEYS.get(name, ("id",)), sensitive=("secret",) if name == "r_int" else (),
                 source_schema="public", target_schema="wallet")


@pytest.fixture
def sides(estate):
    """Both sides level and an empty drift ledger, made anew for each test: no test leans on another's
    drift, repairs or clean runs, so they pass alone and in any order."""
    source, target = estate.source_endpoint("wallet"), estate.target_endpoint()
    with source.connect(autocommit=True) as src, target.connect(autocommit=True) as tgt:
        tgt.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(CONTROL)))
        tgt.execute("CREATE SCHEMA IF NOT EXISTS wallet")
        for name, (columns, fill) in TABLES.items():
            for conn, schema in ((src, "public"), (tgt, "wallet")):
                ident = sql.Identifier(schema, name)
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
                conn.execute(sql.SQL("CREATE TABLE {} ({})").format(ident, sql.SQL(columns)))
                conn.execute(sql.SQL(fill).format(ident))
    return source, target


def run(sides, run_id, **kwargs):
    source, target = sides
    kwargs.setdefault("direction", Direction.SOURCE_TO_TARGET)
    kwargs.setdefault("grace_seconds", 0)
    results = {f"wallet.{name}": reconcile_table(table(name), source, target, run_id=run_id, control_schema=CONTROL, **kwargs)
               for name in TABLES}
    if not kwargs.get("dry_run"):
        with target.connect(autocommit=True) as conn:
            record_outcome(conn, CONTROL, run_id, Direction(kwargs["direction"]).value, results)
    return results


def streak(conn) -> int:
    """Clean runs in a row over this module's tables, as the cutover gate counts them."""
    return clean_streak(conn, CONTROL, Direction.SOURCE_TO_TARGET.value, [f"wallet.{name}" for name in TABLES]).consecutive_clean_runs


def database_fingerprint(conn: psycopg.Connection) -> dict:
    """Every user table's name and full content hash: any write shows up here."""
    names = conn.execute(
        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
    ).fetchall()
    return {
        name: conn.execute(sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} t")
                           .format(sql.Identifier(*name))).fetchone()
        for name in names
    }


def inject_drift(target: psycopg.Connection) -> dict[str, dict]:
    """Drift of every kind on the target; returns the expected findings per table."""
    expected: dict[str, dict] = {}
    target.execute("DELETE FROM wallet.r_int WHERE id IN (5, 1500, 2999)")
    target.execute("UPDATE wallet.r_int SET amount = amount + 1 WHERE id IN (7, 2000)")
    target.execute("UPDATE wallet.r_int SET secret = 'leaked?' WHERE id = 42")
    target.execute("INSERT INTO wallet.r_int (id, name) VALUES (5000, 'extra'), (5001, 'extra')")
    expected["wallet.r_int"] = {5: "missing_in_target", 1500: "missing_in_target", 2999: "missing_in_target",
                                7: "values_differ", 2000: "values_differ", 42: "values_differ",
                                5000: "extra_in_target", 5001: "extra_in_target"}
    gone, changed, extra = (uuid.UUID(target.execute(f"SELECT md5('u{g}')::uuid::text").fetchone()[0]) for g in (10, 20, 0))
    target.execute("DELETE FROM wallet.r_uuid WHERE id = %s", (gone,))
    target.execute("UPDATE wallet.r_uuid SET meta = meta || '{\"x\": 1}' WHERE id = %s", (changed,))
    target.execute("INSERT INTO wallet.r_uuid (id, kind) VALUES (%s, 'extra')", (extra,))
    expected["wallet.r_uuid"] = {gone: "missing_in_target", changed: "values_differ", extra: "extra_in_target"}
    lower = target.execute("SELECT md5('1')").fetchone()[0]
    upper = target.execute("SELECT upper(md5('3'))").fetchone()[0]
    target.execute("DELETE FROM wallet.r_text WHERE id = %s", (lower,))
    target.execute("UPDATE wallet.r_text SET username = 'renamed' WHERE id = %s", (upper,))
    target.execute("INSERT INTO wallet.r_text VALUES ('Zz-extra', 'x'), ('éé-extra', 'y')")
    expected["wallet.r_text"] = {lower: "missing_in_target", upper: "values_differ",
                                 "Zz-extra": "extra_in_target", "éé-extra": "extra_in_target"}
    target.execute("UPDATE wallet.credverse_state_store SET payload = '{\"users\": [1], \"v\": 1}' WHERE service_key = 'wallet-storage'")
    target.execute("DELETE FROM wallet.credverse_state_store WHERE service_key = 'recruiter-storage'")
    expected["wallet.credverse_state_store"] = {"wallet-storage": "values_differ", "recruiter-storage": "missing_in_target"}
    return expected


def found(result) -> dict:
    return {f.key: f.kind.value for f in result.findings}


def test_clean_tables_are_clean_and_ledger_counts_clean_runs(sides):
    results = run(sides, "clean-1")
    assert all(r.clean and r.checked_rows == r.target_rows for r in results.values())
    assert results["wallet.r_int"].checked_rows == 3000
    with sides[1].connect(autocommit=True) as tgt:
        assert streak(tgt) == 1


def test_dry_run_finds_every_drift_and_writes_nothing(sides):
    source, target = sides
    with source.connect(autocommit=True) as src, target.connect(autocommit=True) as tgt:
        expected = inject_drift(tgt)
        before = (database_fingerprint(src), database_fingerprint(tgt))
        results = run(sides, "dry-1", dry_run=True)
        assert (database_fingerprint(src), database_fingerprint(tgt)) == before
        # Not even the drift ledger's tables: a dry run on a fresh target creates nothing.
        assert tgt.execute("SELECT to_regclass('migration_control.reconcile_runs')").fetchone()[0] is None
    for name, keys in expected.items():
        assert found(results[name]) == keys, name
        assert not any(f.repaired for f in results[name].findings)


def test_a_paced_scan_reads_in_slices_rests_while_the_primary_is_over_its_budget_and_finds_the_same(sides, monkeypatch):
    source, target = sides
    with target.connect(autocommit=True) as tgt:
        expected = inject_drift(tgt)
    unpaced = run(sides, "unpaced", dry_run=True)
    monkeypatch.setattr(scan, "SLICE_BLOCKS", 2)
    # A budget no probe can keep: every slice after the first probe rests.
    paced = run(sides, "paced", dry_run=True, budget=LoadBudget(baseline_ms=1e-6, max_increase=0.3))
    for name, result in paced.items():
        assert found(result) == found(unpaced[name]) == expected.get(name, {})
        assert (result.checked_rows, result.target_rows) == (unpaced[name].checked_rows, unpaced[name].target_rows)
        assert unpaced[name].pacing is None
    r_int = paced["wallet.r_int"].summary()["pacing"]
    assert r_int["slices"] >= 10 and r_int["rests"] >= r_int["slices"] - 2 and r_int["probes"] >= 1
    assert r_int["highest_probe_ms"] > r_int["budget_probe_ms"]


def test_repair_fixes_every_drift_and_a_second_run_finds_nothing(sides):
    source, target = sides
    with target.connect(autocommit=True) as tgt:
        inject_drift(tgt)
    results = run(sides, "repair-1")
    for result in results.values():
        assert result.drifted > 0 and result.repaired == result.drifted and not result.cap_exceeded, result.summary()
    with source.connect(autocommit=True) as src, target.connect(autocommit=True) as tgt:
        for name in TABLES:
            fingerprint = sql.SQL("SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {} t")
            assert (src.execute(fingerprint.format(sql.Identifier("public", name))).fetchone()
                    == tgt.execute(fingerprint.format(sql.Identifier("wallet", name))).fetchone()), name
        rows = tgt.execute("SELECT table_name, kind, repaired, source_hash IS NOT NULL OR target_hash IS NOT NULL"
                           " FROM migration_control.reconcile_findings WHERE run_id = 'repair-1'").fetchall()
        assert len(rows) == sum(r.drifted for r in results.values()) and all(r[2] and r[3] for r in rows)
        # A run that repaired everything it found leaves the stores level: it counts as clean.
        assert streak(tgt) == 1
        # Findings hold keys and hashes only: no value of a sensitive column anywhere in the ledger.
        ledger = tgt.execute("SELECT string_agg(f::text, '|') FROM migration_control.reconcile_findings f").fetchone()[0]
        assert "leaked?" not in ledger and "renamed" not in ledger and "users" not in ledger
    second = run(sides, "repair-2")
    assert all(r.clean and r.drifted == 0 for r in second.values())
    with target.connect(autocommit=True) as tgt:
        assert streak(tgt) == 2


def test_a_rerun_of_the_same_run_replaces_its_ledger_rows(sides):
    source, target = sides
    with target.connect(autocommit=True) as tgt:
        tgt.execute("DELETE FROM wallet.r_int WHERE id = 77")
        first = reconcile_table(table("r_int"), source, target, run_id="rerun", direction="source_to_target",
                                control_schema=CONTROL, grace_seconds=0)
        assert first.repaired == 1
        second = reconcile_table(table("r_int"), source, target, run_id="rerun", direction="source_to_target",
                                 control_schema=CONTROL, grace_seconds=0)
        assert second.clean
        assert tgt.execute("SELECT count(*), bool_and(clean) FROM migration_control.reconcile_runs WHERE run_id = 'rerun'").fetchone() == (1, True)
        assert tgt.execute("SELECT count(*) FROM migration_control.reconcile_findings WHERE run_id = 'rerun'").fetchone()[0] == 0


def test_drift_above_the_cap_repairs_nothing(sides):
    source, target = sides
    with target.connect(autocommit=True) as tgt:
        tgt.execute("UPDATE wallet.r_uuid SET kind = 'broken' WHERE kind = 'k1'")
        before = database_fingerprint(tgt)[("wallet", "r_uuid")]
        result = reconcile_table(table("r_uuid"), source, target, run_id="cap-1", direction="source_to_target",
                                 control_schema=CONTROL, cap=50, grace_seconds=0)
        assert result.cap_exceeded and result.repaired == 0 and result.drifted == 51
        assert database_fingerprint(tgt)[("wallet", "r_uuid")] == before
        assert tgt.execute("SELECT cap_exceeded, clean FROM migration_control.reconcile_runs WHERE run_id = 'cap-1'").fetchone() == (True, False)
        fixed = reconcile_table(table("r_uuid"), source, target, run_id="cap-2", direction="source_to_target",
                                control_schema=CONTROL, cap=1000, grace_seconds=0)
        assert fixed.repaired == 500 and not fixed.cap_exceeded


def test_after_cutover_the_target_is_the_primary(sides):
    source, target = sides
    with source.connect(autocommit=True) as src:
        src.execute("UPDATE public.r_int SET name = 'stale' WHERE id = 10")
        src.execute("DELETE FROM public.credverse_state_store WHERE service_key = 'issuer-storage'")
        results = run(sides, "reverse-1", direction=Direction.TARGET_TO_SOURCE)
        assert found(results["wallet.r_int"]) == {10: "values_differ"}
        assert found(results["wallet.credverse_state_store"]) == {"issuer-storage": "extra_in_target"}
        assert src.execute("SELECT name FROM public.r_int WHERE id = 10").fetchone()[0] == "n10"
        assert src.execute("SELECT payload FROM public.credverse_state_store WHERE service_key = 'issuer-storage'").fetchone()[0] == {"queue": []}


def test_tables_reconciled_together_wait_out_one_grace_period_and_an_error_stays_with_its_table(sides, monkeypatch):
    source, target = sides
    waits = []
    monkeypatch.setattr(engine.time, "sleep", waits.append)
    with target.connect(autocommit=True) as tgt:
        tgt.execute("DELETE FROM wallet.r_int WHERE id = 88")
        tgt.execute("UPDATE wallet.r_text SET username = 'drifted' WHERE username = 'user5'")
    missing = Table(service="wallet", name="r_absent", key=("id",), sensitive=(), source_schema="public",
                    target_schema="wallet")
    jobs = [TableJob(table("r_int"), source), TableJob(missing, source), TableJob(table("r_text"), source)]
    results = reconcile_tables(jobs, target, run_id="together", direction=Direction.SOURCE_TO_TARGET,
                               control_schema=CONTROL, grace_seconds=2)
    assert len(waits) == 1 and 0 < waits[0] <= 2
    assert isinstance(results[1], Exception) and "r_absent" in str(results[1])
    assert [(r.table, r.repaired, r.clean) for r in (results[0], results[2])] == [("wallet.r_int", 1, True),
                                                                                  ("wallet.r_text", 1, True)]
