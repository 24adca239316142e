"""Bad manifests and bad connections through the preflight DAG: refused by the first
task that can see the problem, naming it, before anything is written.

(A type that differs between source and target is the schema_baseline gate's,
tested in test_preflight_schema.py; so are an unreachable target and a wrong password.)
"""

from __future__ import annotations

import pytest
from psycopg import sql

from migration_engine.local.estate import _conn_var
from migration_engine.local.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.airflow]


def wallet(estate, statement) -> None:
    estate.source.execute(statement, dbname="wallet")


def assert_refused_with_nothing_written(result, estate, task_id: str, *phrases: str) -> None:
    assert result.returncode != 0, result.output[-3000:]
    assert result.state_of(task_id) == "failed", result.task_states
    for phrase in phrases:
        assert phrase in result.output, f"{phrase!r} not in:\n{result.output[-3000:]}"
    assert not any(t.startswith(("freeze_", "back_up_")) and s == "success" for t, s in result.task_states.items())
    with estate.target_endpoint().connect() as conn:
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname !~ '^(pg_|information_schema)'")}
    assert schemas == {"public"}, "something was created on the target"
    for secret in estate.secrets():
        assert secret not in result.output


def test_a_manifest_table_missing_from_the_source_is_named(filled_sources, estate, run, tmp_path):
    wallet(estate, "ALTER TABLE public.evidence RENAME TO evidence_renamed")
    try:
        result = run("preflight")
    finally:
        wallet(estate, "ALTER TABLE public.evidence_renamed RENAME TO evidence")
    assert_refused_with_nothing_written(result, estate, "check_wallet_source",
                                        "public.evidence in the wallet source: table is listed in the manifest")
    assert not (tmp_path / "backups").exists()


def test_a_key_that_is_not_unique_is_named(filled_sources, estate, run):
    wallet(estate, "ALTER TABLE public.otp_codes DROP CONSTRAINT otp_codes_pkey")
    try:
        result = run("preflight")
    finally:
        wallet(estate, "ALTER TABLE public.otp_codes ADD PRIMARY KEY (id)")
    assert_refused_with_nothing_written(result, estate, "check_wallet_source",
                                        "public.otp_codes in the wallet source: key ['id'] is not unique")


def test_a_nullable_unique_key_is_named(filled_sources, estate, run):
    """A unique constraint lets NULLs repeat: such rows would be copied twice, merged away and never chunked."""
    wallet(estate, "ALTER TABLE public.otp_codes DROP CONSTRAINT otp_codes_pkey")
    wallet(estate, "ALTER TABLE public.otp_codes ADD CONSTRAINT otp_codes_id_key UNIQUE (id)")
    wallet(estate, "ALTER TABLE public.otp_codes ALTER COLUMN id DROP NOT NULL")
    try:
        result = run("preflight")
    finally:
        wallet(estate, "ALTER TABLE public.otp_codes DROP CONSTRAINT otp_codes_id_key")
        wallet(estate, "ALTER TABLE public.otp_codes ADD PRIMARY KEY (id)")
    assert_refused_with_nothing_written(result, estate, "check_wallet_source",
                                        "public.otp_codes in the wallet source: key column id may be NULL")


def test_a_wrong_database_name_is_named_without_the_password(filled_sources, estate, manifest, run):
    var = _conn_var(manifest.source_conn_id("issuer"))
    result = run("preflight", env={var: estate.source.url("issuer_typo")})
    assert_refused_with_nothing_written(result, estate, "check_issuer_source", "issuer source", "issuer_typo")


def test_an_unreachable_source_host_is_named_without_the_password(filled_sources, estate, manifest, run):
    var = _conn_var(manifest.source_conn_id("recruiter"))
    closed = estate.source.url("recruiter").replace(f":{estate.source.port}/", f":{free_port()}/")
    result = run("preflight", env={var: closed})
    assert_refused_with_nothing_written(result, estate, "check_recruiter_source", "recruiter source")


def test_the_sources_as_restored_pass_the_same_checks(filled_sources, estate, manifest, run):
    """The refusals above come from the broken inputs, not from the estate."""
    try:
        result = run("preflight")
    finally:
        # A passed preflight writes its ledger: gone again, the other tests can still see that they wrote nothing.
        with estate.target_endpoint().connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(manifest.control_schema)))
    assert result.succeeded, result.output[-3000:]
    assert {result.state_of(f"check_{s}_source") for s in ("wallet", "issuer", "recruiter")} == {"success"}
