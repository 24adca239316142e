"""Phases A and B through Airflow (`airflow dags test`) on throwaway servers.

One estate per module; every test first puts the target back to the state it
needs (no schemas, or a ledger at preflight_passed set by the same engine
functions the preflight DAG runs), so tests do not depend on each other's order.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest
from psycopg import sql

from migration_engine import catalog, ledger, preflight
from migration_engine.backup import client_binary, libpq_environment
from migration_engine.catalog import schema_differences
from migration_engine.endpoints import from_url
from migration_engine.local.servers import free_port
from migration_engine.schema_sql import apply_drizzle_migration, apply_schema
from tests.integration.backfill_support import fill_sources

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONTROL = "migration_control"
DIRECT_VAR = "AIRFLOW_CONN_CREDITY_TARGET_DIRECT"
POOLER_VAR = "AIRFLOW_CONN_CREDITY_TARGET_POOLER"


# --- set-up helpers ---------------------------------------------------------------------------


def reset_target(estate, manifest) -> None:
    """Back to an empty target: no service schemas, no ledger."""
    names = [s.target_schema for s in manifest.services] + [manifest.control_schema]
    estate.target.execute(
        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.SQL(", ").join(map(sql.Identifier, names))),
        dbname="postgres_target",
    )


def ledger_at_preflight_passed(estate, manifest) -> None:
    """The state preflight leaves, set with the engine functions its tasks call (no backup)."""
    reset_target(estate, manifest)
    with estate.target_endpoint().connect() as target:
        ledger.ensure_ledger(target, CONTROL)
        for service in manifest.services:
            with estate.source_endpoint(service.name).connect() as source:
                preflight.freeze_fingerprint(source, target, manifest, service.name, "test", "setup")
        ledger.advance(target, CONTROL, "preflight_passed", "test", "setup")


def target_query(estate, statement, params=None):
    with estate.target_endpoint().connect(autocommit=True) as conn:
        return conn.execute(statement, params).fetchall()


def target_execute(estate, *statements) -> None:
    """As the target's owner role, the way a mistaken earlier run would have."""
    with estate.target_endpoint().connect(autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def target_schemas(estate) -> set[str]:
    rows = target_query(estate, "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'")
    return {r[0] for r in rows}


def ledger_status(estate) -> dict:
    with estate.target_endpoint().connect() as conn:
        return ledger.status(conn, CONTROL)


def target_fingerprint(estate, manifest) -> catalog.Fingerprint:
    with estate.target_endpoint().connect() as conn:
        return catalog.fingerprint(conn, [s.target_schema for s in manifest.services] + [CONTROL])


def restore_backup(estate, backups: list[dict], service: str) -> int:
    """Restore one recorded backup into a scratch database (as the README says); rows in its users table."""
    record = next(b for b in backups if b["service"] == service)
    scratch = f"{service}_restored"
    estate.source.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(scratch)))
    estate.source.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    endpoint = from_url("scratch", estate.source.url(scratch))
    with libpq_environment(endpoint.named("restore-check")) as env:
        subprocess.run([client_binary("pg_restore"), "--jobs=2", f"--dbname={scratch}", record["path"]], env=env, check=True,
                       capture_output=True)
    with endpoint.connect() as conn:
        return conn.execute("SELECT count(*) FROM public.users").fetchone()[0]


def failed_with(result, task_id: str, *phrases: str) -> None:
    """The run failed at ``task_id``, its output names every phrase, and nothing downstream ran."""
    assert result.returncode != 0, "airflow dags test exits non-zero when a task failed"
    assert result.state_of(task_id) == "failed", result.task_states
    for phrase in phrases:
        assert phrase in result.output, f"{phrase!r} not in the output:\n{result.output[-6000:]}"


# --- happy path -------------------------------------------------------------------------------


def test_preflight_then_schema_baseline_pass_and_the_ledger_shows_both(filled_sources, estate, manifest, run, tmp_path):
    reset_target(estate, manifest)
    # The pooler connection as the apps' env writes it (pgbouncer=true, sslmode).
    pooler_url = estate.pooler_url() + "&sslmode=prefer"
    result = run("preflight", env={POOLER_VAR: pooler_url})
    assert result.succeeded, result.output[-6000:]
    assert set(result.task_states.values()) == {"success"}

    status = ledger_status(estate)
    assert status["current_phase"] == "preflight_passed"
    assert status["may_advance_to"] == ["schema_applied"]

    summary_files = list((tmp_path / "artifacts" / "preflight").glob("*/preflight_summary.json"))
    assert len(summary_files) == 1
    summary = json.loads(summary_files[0].read_text())
    by_name = {e["endpoint"]: e for e in summary["endpoints"]}
    assert by_name["target (pooler)"]["pooled"] is True
    assert by_name["target (direct)"]["role"] == "migrator" and by_name["target (direct)"]["superuser"] is False
    assert by_name["target (direct)"]["can_create_schema"] is True
    assert {k["key"] for keys in summary["state_store"].values() for k in keys} == {
        k for keys in manifest.state_store.keys_by_service.values() for k in keys
    }
    assert "Backups (verified with pg_restore --list)" in summary_files[0].with_suffix(".txt").read_text()
    for record in summary["backups"]:
        folder = Path(record["path"])
        assert folder.is_dir() and folder.parent.parent == tmp_path / "backups" / manifest.migration
        assert (folder / "toc.dat").exists() and record["size_bytes"] > 0

    restored_rows = restore_backup(estate, summary["backups"], "wallet")
    with estate.source_endpoint("wallet").connect() as conn:
        assert conn.execute("SELECT count(*) FROM public.users").fetchone()[0] == restored_rows > 0

    result = run("schema_baseline")
    assert result.succeeded, result.output[-6000:]
    status = ledger_status(estate)
    assert status["current_phase"] == "schema_applied"
    assert [h["phase"] for h in status["history"]] == ["preflight_passed", "schema_applied"]
    assert status["history"][1]["dag_id"] == "schema_baseline"
    # Not applied here: unique and foreign keys wait for the backfill.
    assert target_query(estate, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'issuer'::regnamespace") == [(0,)]


def test_schema_baseline_twice_leaves_the_catalog_unchanged(filled_sources, estate, manifest, run):
    ledger_at_preflight_passed(estate, manifest)
    first = run("schema_baseline")
    assert first.succeeded, first.output[-6000:]
    before = target_fingerprint(estate, manifest)
    history = ledger_status(estate)["history"]

    second = run("schema_baseline")
    assert second.succeeded, second.output[-6000:]
    assert target_fingerprint(estate, manifest).sha256 == before.sha256
    assert ledger_status(estate)["history"] == history  # the re-run did not add a transition


def test_preflight_reuses_its_verified_backup_on_a_re_run(filled_sources, estate, manifest, run, tmp_path):
    reset_target(estate, manifest)
    assert run("preflight").succeeded
    with estate.target_endpoint().connect() as conn:
        first = ledger.read_fact(conn, CONTROL, "backup:wallet").value
    again = run("preflight")
    assert again.succeeded, again.output[-6000:]
    with estate.target_endpoint().connect() as conn:
        second = ledger.read_fact(conn, CONTROL, "backup:wallet").value
        history = ledger.status(conn, CONTROL)["history"]
    assert second["path"] == first["path"] and second["sha256"] == first["sha256"] and second["reused"] is True
    assert len(history) == 1
    assert not list((tmp_path / "backups").rglob(".partial-*"))


# --- preflight failures: named, and nothing written to the target ------------------------------


def test_unreachable_target_fails_naming_the_endpoint(filled_sources, estate, manifest, run):
    reset_target(estate, manifest)
    wrong_port = estate.target_url().replace(f":{estate.target.port}/", f":{free_port()}/")
    result = run("preflight", env={DIRECT_VAR: wrong_port})
    failed_with(result, "check_target_direct", "cannot connect to target (direct)")
    assert result.state_of("record_preflight_passed") == "upstream_failed"
    assert manifest.control_schema not in target_schemas(estate)


def test_wrong_password_fails_and_the_password_is_nowhere(filled_sources, estate, manifest, run, airflow_home):
    reset_target(estate, manifest)
    wrong = "Wr0ng-Secret-Pw-4711"
    url = estate.target_url().replace(f":{estate.target_password}@", f":{wrong}@")
    assert wrong in url
    result = run("preflight", env={DIRECT_VAR: url})
    failed_with(result, "check_target_direct", "cannot connect to target (direct)", "password authentication failed")
    assert manifest.control_schema not in target_schemas(estate)
    for secret in [wrong, *estate.secrets()]:
        assert secret not in result.output
        for path in airflow_home.home.rglob("*"):
            if path.is_file():
                assert secret not in path.read_text(errors="replace"), f"a password appears in {path}"


def test_stale_state_store_key_fails_naming_key_and_service(filled_sources, estate, manifest, run):
    reset_target(estate, manifest)
    with estate.source_endpoint("issuer").connect(autocommit=True) as conn:
        conn.execute("UPDATE public.credverse_state_store SET updated_at = now() - interval '30 hours' WHERE service_key = 'issuer-compliance'")
    try:
        result = run("preflight")
        failed_with(result, "check_issuer_state_store", "key 'issuer-compliance' of service issuer was last updated 30.0 h ago")
        assert result.state_of("prepare_ledger") == "upstream_failed"
        assert manifest.control_schema not in target_schemas(estate)

        # A quiet service: the operator widens the window on purpose through the Param.
        widened = run("preflight", {"max_age_hours": 48})
        assert widened.succeeded, widened.output[-6000:]
    finally:
        fill_sources(estate, manifest)


def test_missing_state_store_key_fails(filled_sources, estate, manifest, run):
    reset_target(estate, manifest)
    with estate.source_endpoint("recruiter").connect(autocommit=True) as conn:
        conn.execute("DELETE FROM public.credverse_state_store WHERE service_key = 'recruiter-oid4vp-requests'")
    try:
        result = run("preflight")
        failed_with(result, "check_recruiter_state_store", "key 'recruiter-oid4vp-requests' of service recruiter is missing")
        assert manifest.control_schema not in target_schemas(estate)
    finally:
        fill_sources(estate, manifest)


# --- schema baseline failures: named, the ledger does not advance -----------------------------


def test_source_column_added_after_preflight_is_refused_before_any_ddl(filled_sources, estate, manifest, run):
    ledger_at_preflight_passed(estate, manifest)
    with estate.source_endpoint("wallet").connect(autocommit=True) as conn:
        conn.execute("ALTER TABLE public.users ADD COLUMN nickname text")
    try:
        result = run("schema_baseline")
        failed_with(
            result, "check_wallet_source_unchanged",
            "the wallet source schema changed since preflight",
            "wallet.users: column nickname (text) exists in the live source, missing in the preflight fingerprint",
        )
        assert result.state_of("apply_service_schemas") == "upstream_failed"
        assert not {"wallet", "issuer", "recruiter"} & target_schemas(estate)
        assert ledger_status(estate)["current_phase"] == "preflight_passed"
    finally:
        with estate.source_endpoint("wallet").connect(autocommit=True) as conn:
            conn.execute("ALTER TABLE public.users DROP COLUMN nickname")


def test_target_column_with_another_type_fails_the_gate(filled_sources, estate, manifest, run):
    ledger_at_preflight_passed(estate, manifest)
    target_execute(
        estate,
        "CREATE SCHEMA issuer",
        "CREATE TABLE issuer.tenants (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL, "
        "plan varchar(20) DEFAULT 'free', created_at timestamp DEFAULT now())",
    )
    result = run("schema_baseline")
    failed_with(result, "check_issuer_schema_matches_source",
                "issuer.tenants: column plan type text in source, character varying(20) in target")
    assert result.state_of("record_schema_applied") == "upstream_failed"
    assert result.state_of("check_wallet_schema_matches_source") == "success"
    assert ledger_status(estate)["current_phase"] == "preflight_passed"


def test_missing_enum_value_fails_the_gate(filled_sources, estate, manifest, run):
    ledger_at_preflight_passed(estate, manifest)
    target_execute(estate, "CREATE SCHEMA issuer", "CREATE TYPE issuer.trust_status AS ENUM ('pending', 'trusted')")
    result = run("schema_baseline")
    failed_with(result, "check_issuer_schema_matches_source",
                "issuer.trust_status: enum value 'revoked' exists in source, missing in target")
    assert ledger_status(estate)["current_phase"] == "preflight_passed"


def test_the_wallets_old_committed_migration_fails_the_gate(filled_sources, estate, manifest, run):
    ledger_at_preflight_passed(estate, manifest)
    target_execute(estate, "CREATE SCHEMA wallet")
    with estate.target_endpoint().connect() as conn:
        apply_drizzle_migration(conn, FIXTURES / "wallet_0000_fuzzy_cammi.sql", schema="wallet")
    result = run("schema_baseline")
    failed_with(
        result, "check_wallet_schema_matches_source",
        "wallet.users: column phone_number (text) exists in source, missing in target",
        "wallet.users: column phone_verified (boolean) exists in source, missing in target",
        "wallet.users: column email_verified (boolean) exists in source, missing in target",
    )
    assert ledger_status(estate)["current_phase"] == "preflight_passed"


# --- the ledger refuses work out of order -----------------------------------------------------


def test_backfill_before_schema_baseline_is_refused_by_the_ledger(filled_sources, estate, manifest):
    # The backfill DAG calls require_phase with this set; here the engine call is tested directly.
    ledger_at_preflight_passed(estate, manifest)
    with estate.target_endpoint().connect() as conn:
        with pytest.raises(ledger.PhaseError) as refused:
            ledger.require_phase(conn, CONTROL, {"schema_applied", "backfilled"}, "backfill")
    message = str(refused.value)
    assert message.startswith("backfill needs phase schema_applied or backfilled; the ledger says preflight_passed since ")
    assert message.endswith("(dag test, run setup). Run schema_baseline first.")


def test_schema_baseline_on_an_empty_ledger_is_refused(filled_sources, estate, manifest, run):
    reset_target(estate, manifest)
    result = run("schema_baseline")
    failed_with(result, "check_ledger_phase",
                "schema_baseline needs phase preflight_passed or schema_applied; the ledger is empty")
    assert target_schemas(estate) & {"wallet", "issuer", "recruiter", CONTROL} == set()


def test_advance_validates_order_and_a_repeat_adds_no_row(filled_sources, estate, manifest):
    ledger_at_preflight_passed(estate, manifest)
    with estate.target_endpoint().connect() as conn:
        with pytest.raises(ledger.PhaseError, match="cannot move the ledger from preflight_passed to backfilled"):
            ledger.advance(conn, CONTROL, "backfilled", "backfill", "r1")
        assert ledger.advance(conn, CONTROL, "schema_applied", "schema_baseline", "r2") is True
        assert ledger.advance(conn, CONTROL, "schema_applied", "schema_baseline", "r3") is False
        assert [h["run_id"] for h in ledger.status(conn, CONTROL)["history"]] == ["setup", "r2"]


def test_later_phases_check_every_source_against_its_frozen_fingerprint(filled_sources, estate, manifest):
    ledger_at_preflight_passed(estate, manifest)

    endpoints = estate.source_endpoints()
    with estate.target_endpoint().connect() as ledger_conn:
        assert set(preflight.check_sources_unchanged(ledger_conn, manifest, endpoints)) == {"wallet", "issuer", "recruiter"}
        with estate.source_endpoint("issuer").connect(autocommit=True) as conn:
            conn.execute("CREATE TABLE public.audit_trail (id bigint PRIMARY KEY)")
        try:
            with pytest.raises(preflight.SchemaChanged) as changed:
                preflight.check_sources_unchanged(ledger_conn, manifest, endpoints)
        finally:
            with estate.source_endpoint("issuer").connect(autocommit=True) as conn:
                conn.execute("DROP TABLE public.audit_trail")
    assert "the issuer source schema changed since preflight" in str(changed.value)
    assert "issuer.audit_trail: table exists in the live source, missing in the preflight fingerprint" in str(changed.value)
    assert "wallet" not in str(changed.value)


def test_concurrent_advances_queue_on_the_ledger_lock_and_record_one_transition(filled_sources, estate, manifest):
    ledger_at_preflight_passed(estate, manifest)
    results = {}
    with estate.target_endpoint().connect() as first, estate.target_endpoint().connect() as second:
        with first.transaction():
            results["first"] = ledger.advance(first, CONTROL, "schema_applied", "schema_baseline", "run-a")
            # The second advance must wait for the first transaction, then see its result.
            waiter = threading.Thread(
                target=lambda: results.__setitem__("second", ledger.advance(second, CONTROL, "schema_applied", "schema_baseline", "run-b"))
            )
            waiter.start()
            waiter.join(timeout=1.5)
            assert waiter.is_alive(), "the second advance did not wait for the ledger lock"
        waiter.join(timeout=10)
        assert results == {"first": True, "second": False}
        assert [h["run_id"] for h in ledger.status(first, CONTROL)["history"]] == ["setup", "run-a"]


def test_a_source_without_the_state_store_table_is_named(filled_sources, estate, manifest):
    estate.source.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier("wallet_empty")))
    estate.source.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("wallet_empty")))
    with from_url("wallet source", estate.source.url("wallet_empty")).connect() as conn:
        with pytest.raises(preflight.StateStoreError, match=r"wallet source: public\.credverse_state_store does not exist"):
            preflight.check_state_store(conn, manifest, "wallet", 24)


def test_after_post_load_constraints_a_full_compare_matches_every_source(filled_sources, estate, manifest):
    # What the backfill leaves: every step applied, constraints included; the full gate then has nothing to say.
    reset_target(estate, manifest)
    with estate.target_endpoint().connect(autocommit=True) as target:
        apply_schema(target, manifest)
        for service in manifest.services:
            with estate.source_endpoint(service.name).connect() as source:
                assert schema_differences(source, target, manifest, service.name, deferred=False)[0] == []
        target.execute("ALTER TABLE wallet.users DROP CONSTRAINT users_username_unique")
        with estate.source_endpoint("wallet").connect() as source:
            assert schema_differences(source, target, manifest, "wallet", deferred=True)[0] == []
            assert schema_differences(source, target, manifest, "wallet", deferred=False)[0] == [
                "wallet.users: unique (username) exists in source, missing in target"
            ]
