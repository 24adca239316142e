"""Verification against real servers: settings-independent checksums, failures named, reports written."""

from __future__ import annotations

import json

import pytest

from migration_engine.chunks import plan_all
from migration_engine.copier import copy_chunk
from migration_engine.sequences import sync_sequences
from migration_engine.verify import VerificationFailed, assert_verified, verify, write_report
from tests.integration.backfill_support import create_schema, source_sql, target_sql

pytestmark = pytest.mark.integration

SECRET_TOKEN = "oauth-secret-value-never-shown"


def insert_known_rows(estate, manifest) -> None:
    source_sql(estate, "wallet", "INSERT INTO users (username, password, name) "
                                 "SELECT 'u' || g, 'pw', 'Name ' || g FROM generate_series(1, 200) g")
    source_sql(estate, "wallet", "INSERT INTO activities (user_id, type, description, timestamp) "
                                 "SELECT g % 200 + 1, 'login', 'at ' || g, timestamp '2026-02-01 10:00' + g * interval '17 minutes' "
                                 "FROM generate_series(1, 1000) g")
    source_sql(estate, "wallet", "INSERT INTO platform_connections (user_id, platform_id, platform_name, oauth_access_token) "
                                 "VALUES (1, 'uber', 'Uber', %s)", (SECRET_TOKEN,))
    source_sql(estate, "issuer", "INSERT INTO tenants (name, created_at) SELECT 'tenant ' || g, "
                                 "timestamp '2026-01-01' + g * interval '1 hour 1 second' FROM generate_series(1, 100) g")
    source_sql(estate, "issuer", "INSERT INTO issuers (tenant_id, name, domain, trust_status, meta) "
                                 "SELECT id, name, 'example.org', 'trusted', jsonb_build_object('score', 0.1 + 0.2) FROM tenants")
    source_sql(estate, "recruiter", "INSERT INTO users (username, password) SELECT 'r' || g, 'pw' FROM generate_series(1, 50) g")
    for service, keys in manifest.state_store.keys_by_service.items():
        for key in keys:
            source_sql(estate, service, "INSERT INTO credverse_state_store (service_key, payload, updated_at) "
                                        "VALUES (%s, jsonb_build_object('key', %s::text, 'at', now(), 'n', 1.50), now())", (key, key))


@pytest.fixture(scope="module")
def backfilled(estate, manifest, sources):
    create_schema(estate, manifest)
    insert_known_rows(estate, manifest)
    for chunk in plan_all(manifest, sources, target_rows=150):
        copy_chunk(sources[manifest.table(chunk.table).service], estate.target_endpoint(), manifest, chunk, run_id="verify-test")
    sync_sequences(sources, estate.target_endpoint(), manifest)
    return estate


def test_identical_data_verifies_and_report_is_written(backfilled, manifest, sources, tmp_path):
    result = verify(sources, backfilled.target_endpoint(), manifest)
    assert result["ok"], result["failures"]
    assert len(result["tables"]) == len(manifest.tables)
    assert next(t for t in result["tables"] if t["table"] == "wallet.activities")["rows_target"] == 1000
    assert len(result["state_store"]) == sum(len(k) for k in manifest.state_store.keys_by_service.values())
    assert any(s["table"] == "wallet.users" for s in result["sequences"])
    assert_verified(result)
    html_path, json_path = write_report(result, tmp_path)
    assert json.loads(json_path.read_text())["ok"] is True
    assert "Verification PASSED" in html_path.read_text()


def test_different_timezone_and_datestyle_still_verify(backfilled, manifest, sources):
    backfilled.source.configure(TimeZone="Asia/Kolkata", DateStyle="SQL, DMY", IntervalStyle="sql_standard", extra_float_digits="0")
    backfilled.source.restart()
    assert source_sql(backfilled, "wallet", "SHOW TimeZone") == [("Asia/Kolkata",)]
    # The server's own setting: the engine's sessions ask for ISO output, which psycopg needs to read dates.
    assert source_sql(backfilled, "wallet", "SELECT setting FROM pg_file_settings WHERE name = 'DateStyle' "
                                            "ORDER BY seqno DESC LIMIT 1") == [("SQL, DMY",)]
    assert target_sql(backfilled, "SHOW TimeZone") != [("Asia/Kolkata",)]
    result = verify(sources, backfilled.target_endpoint(), manifest)
    assert result["ok"], result["failures"]


def test_one_changed_value_fails_naming_the_table(backfilled, manifest, sources, tmp_path):
    target_sql(backfilled, "UPDATE issuer.tenants SET created_at = created_at + interval '1 second' "
                           "WHERE name = 'tenant 7'")
    target_sql(backfilled, "UPDATE wallet.platform_connections SET oauth_access_token = oauth_access_token || 'x'")
    try:
        result = verify(sources, backfilled.target_endpoint(), manifest)
        assert not result["ok"]
        assert result["failed_tables"] == ["wallet.platform_connections", "issuer.tenants"]
        tenants = next(t for t in result["tables"] if t["table"] == "issuer.tenants")
        assert tenants["rows_match"] and not tenants["checksum_match"]
        with pytest.raises(VerificationFailed, match=r"tables: wallet\.platform_connections, issuer\.tenants"):
            assert_verified(result)
        html_path, json_path = write_report(result, tmp_path)
        page = html_path.read_text()
        assert "Verification FAILED" in page and '<tr class="fail"><td>issuer.tenants</td>' in page
        assert SECRET_TOKEN not in page and SECRET_TOKEN not in json_path.read_text()
    finally:
        target_sql(backfilled, "UPDATE issuer.tenants SET created_at = created_at - interval '1 second' "
                               "WHERE name = 'tenant 7'")
        target_sql(backfilled, "UPDATE wallet.platform_connections SET oauth_access_token = left(oauth_access_token, -1)")
    assert verify(sources, backfilled.target_endpoint(), manifest)["ok"]


def test_state_store_key_missing_or_different_fails_naming_the_key(backfilled, manifest, sources):
    # Kept as text, so that a numeric like 1.50 comes back written as it was.
    (payload,), = target_sql(backfilled, "UPDATE issuer.credverse_state_store s SET payload = s.payload || '{\"n\": 1.5}' "
                                         "FROM issuer.credverse_state_store old WHERE s.service_key = 'issuer-compliance' "
                                         "AND old.service_key = s.service_key RETURNING old.payload::text")
    (row,), = target_sql(backfilled, "DELETE FROM recruiter.credverse_state_store t WHERE service_key = 'recruiter-storage' "
                                     "RETURNING to_jsonb(t)::text")
    try:
        result = verify(sources, backfilled.target_endpoint(), manifest, tables=[])
        assert not result["ok"]
        assert "state store issuer.credverse_state_store key issuer-compliance: payload differs" in result["failures"]
        assert "state store recruiter.credverse_state_store key recruiter-storage: missing in target" in result["failures"]
    finally:
        target_sql(backfilled, "UPDATE issuer.credverse_state_store SET payload = %s::jsonb WHERE service_key = 'issuer-compliance'",
                   (payload,))
        target_sql(backfilled, "INSERT INTO recruiter.credverse_state_store "
                               "SELECT * FROM jsonb_populate_record(NULL::recruiter.credverse_state_store, %s::jsonb)", (row,))
    assert verify(sources, backfilled.target_endpoint(), manifest, tables=[])["ok"]


def test_target_sequence_behind_the_source_fails(backfilled, manifest, sources):
    (last_value, is_called), = source_sql(backfilled, "wallet", "SELECT last_value, is_called FROM users_id_seq")
    source_sql(backfilled, "wallet", "SELECT setval('users_id_seq', 5000)")
    try:
        result = verify(sources, backfilled.target_endpoint(), manifest, tables=[], state_store=False)
        assert "wallet.users.id: target sequence at 200 is below the source's 5000" in result["failures"]
    finally:
        source_sql(backfilled, "wallet", "SELECT setval('users_id_seq', %s, %s)", (last_value, is_called))
