"""The backfill engine against real servers: planning, streaming COPY, exactly-once, merge, sequences."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import psycopg
import pytest
import yaml

from migration_engine.catalog import ColumnMismatch
from migration_engine.chunk_ledger import backfill_progress, ensure_chunk_ledger
from migration_engine.chunks import plan_all, plan_chunks
from migration_engine.copier import CopyError, copy_chunk
from migration_engine.manifest import load_manifest
from migration_engine.segment import KeyKind, TableSegment
from migration_engine.sequences import sync_sequences
from migration_engine.verify import verify
from tests.integration.backfill_support import create_schema, source_sql, target_sql

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def estate_with_schema(estate, manifest):
    create_schema(estate, manifest)
    return estate


def copy_table(estate, manifest, sources, qualified: str, *, target_rows: int, force: bool = False) -> list[dict]:
    table = manifest.table(qualified)
    with sources[table.service].connect(autocommit=True) as conn:
        chunks = plan_chunks(conn, table, target_rows=target_rows)
    return [copy_chunk(sources[table.service], estate.target_endpoint(), manifest, c, force=force, run_id="test") for c in chunks]


def ledger_rows(estate, qualified: str) -> list:
    return target_sql(estate, "SELECT label, copies FROM migration_control.backfill_chunks WHERE table_name = %s ORDER BY label", (qualified,))


def test_plan_balances_skewed_serial_keys(estate_with_schema, manifest, sources):
    # Two dense islands of ids far apart: uniform splitting of [min, max] would put everything in two chunks.
    source_sql(estate_with_schema, "wallet",
               "INSERT INTO activities (id, user_id, type, description) "
               "SELECT g, 1, 'login', 'd' FROM generate_series(1, 2000) g "
               "UNION ALL SELECT g, 1, 'login', 'd' FROM generate_series(50000000, 50002000) g")
    table = manifest.table("wallet.activities")
    with sources["wallet"].connect(autocommit=True) as conn:
        chunks = plan_chunks(conn, table, target_rows=500)
    assert chunks[0].lower is None and chunks[-1].upper is None
    assert 7 <= len(chunks) <= 9
    for chunk in chunks:
        params = {"lower": chunk.lower, "upper": chunk.upper}
        where = " AND ".join(filter(None, ["id >= %(lower)s" if chunk.lower is not None else "",
                                           "id < %(upper)s" if chunk.upper is not None else ""]))
        count = source_sql(estate_with_schema, "wallet", f"SELECT count(*) FROM activities WHERE {where}", params)[0][0]
        assert 400 <= count <= 600, (chunk.label, count)


def test_copies_integer_uuid_text_and_enum_keys(estate_with_schema, manifest, sources):
    e = estate_with_schema
    source_sql(e, "issuer", "INSERT INTO tenants (name) SELECT 'tenant ' || g FROM generate_series(1, 300) g")
    source_sql(e, "issuer", "INSERT INTO issuers (tenant_id, name, domain, trust_status) "
                            "SELECT id, name, 'example.org', (ARRAY['pending','trusted','revoked']::trust_status[])[1 + (random()*2)::int] FROM tenants")
    source_sql(e, "recruiter", "INSERT INTO users (username, password) SELECT 'user' || g, 'pw' || g FROM generate_series(1, 300) g")
    source_sql(e, "wallet", "INSERT INTO credverse_state_store (service_key, payload) VALUES "
                            "('wallet-storage', '{\"users\": [1, 2, 3]}'), ('wallet-other', '{}'), ('a', '[]'), ('zz', 'null')")
    results = []
    for qualified in ("wallet.activities", "issuer.tenants", "issuer.issuers", "recruiter.users", "wallet.credverse_state_store"):
        results += copy_table(e, manifest, sources, qualified, target_rows=100)
    assert {r["mode"] for r in results} == {"copy"}
    assert {r["format"] for r in results} == {"binary"}
    assert len([r for r in results if r["table"] == "issuer.tenants"]) >= 3
    result = verify(sources, e.target_endpoint(), manifest, state_store=False, sequences=False,
                    tables=["wallet.activities", "issuer.tenants", "issuer.issuers", "recruiter.users", "wallet.credverse_state_store"])
    assert result["ok"], result["failures"]


def test_second_copy_is_skipped_and_ledger_has_one_row(estate_with_schema, manifest, sources):
    e = estate_with_schema
    source_sql(e, "wallet", "INSERT INTO api_usage (endpoint, month) SELECT '/v1/x', '2026-02' FROM generate_series(1, 50)")
    first = copy_table(e, manifest, sources, "wallet.api_usage", target_rows=1000)
    second = copy_table(e, manifest, sources, "wallet.api_usage", target_rows=1000)
    assert [r["mode"] for r in first] == ["copy"] and first[0]["rows"] == 50
    assert [r["mode"] for r in second] == ["skipped"]
    assert target_sql(e, "SELECT count(*) FROM wallet.api_usage")[0][0] == 50
    assert ledger_rows(e, "wallet.api_usage") == [("wallet.api_usage (all)", 1)]
    progress = backfill_progress(e.target_endpoint(), manifest, {"wallet.api_usage": 1, "wallet.evidence": 3})
    assert progress["wallet.api_usage"]["chunks_done"] == 1 and progress["wallet.api_usage"]["rows"] == 50
    assert progress["wallet.api_usage"]["eta_s"] == 0.0
    assert progress["wallet.evidence"]["chunks_done"] == 0 and progress["wallet.evidence"]["chunks_total"] == 3


@contextmanager
def target_copy_held(e, manifest, sources, chunk: TableSegment, at_id: int):
    """A chunk's copy running in a thread, its target COPY held by a trigger at row ``at_id`` until the
    block ends (mid-stream, deterministically). Yields the held target backend's pid and the list
    the copy's error lands in."""
    schema, name = chunk.table.split(".")
    target_sql(e, f"CREATE FUNCTION {schema}.hold_copy() RETURNS trigger LANGUAGE plpgsql AS "
                  f"$$BEGIN IF NEW.id = {at_id} THEN PERFORM pg_advisory_xact_lock(4242); END IF; RETURN NEW; END$$")
    target_sql(e, f"CREATE TRIGGER hold_copy BEFORE INSERT ON {schema}.{name} FOR EACH ROW EXECUTE FUNCTION {schema}.hold_copy()")
    errors = []
    with e.target_endpoint().connect() as holder:
        holder.execute("SELECT pg_advisory_xact_lock(4242)")
        worker = threading.Thread(target=lambda: errors.append(_copy_error(sources[manifest.table(chunk.table).service], e.target_endpoint(), manifest, chunk)))
        worker.start()
        deadline = time.monotonic() + 30
        waiting = []
        while not waiting and time.monotonic() < deadline:
            waiting = holder.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted").fetchall()
            time.sleep(0.05)
        assert waiting, "the copy never reached the held row"
        yield waiting[0][0], errors
        holder.rollback()
        worker.join(30)
    target_sql(e, f"DROP TRIGGER hold_copy ON {schema}.{name}")
    target_sql(e, f"DROP FUNCTION {schema}.hold_copy()")


def assert_nothing_committed_then_rerun_copies(e, manifest, sources, chunk: TableSegment, errors: list, rows: int) -> None:
    assert errors and isinstance(errors[0], CopyError) and "nothing committed" in str(errors[0]), errors
    assert target_sql(e, f"SELECT count(*) FROM {chunk.table}")[0][0] == 0
    assert ledger_rows(e, chunk.table) == []
    rerun = copy_chunk(sources[manifest.table(chunk.table).service], e.target_endpoint(), manifest, chunk, run_id="rerun")
    assert rerun["mode"] == "copy" and rerun["rows"] == rows
    assert verify(sources, e.target_endpoint(), manifest, tables=[chunk.table], state_store=False, sequences=False)["ok"]


def test_interrupted_copy_leaves_nothing_and_rerun_completes(estate_with_schema, manifest, sources):
    e = estate_with_schema
    source_sql(e, "wallet", "INSERT INTO otp_codes (id, identifier, code, purpose, expires_at) "
                            "SELECT g, 'id' || g, '123456', 'login', now() FROM generate_series(1, 3000) g")
    chunk = TableSegment("wallet.otp_codes", "id", "integer", None, None)
    with target_copy_held(e, manifest, sources, chunk, at_id=1500) as (held_pid, errors):
        target_sql(e, "SELECT pg_terminate_backend(%s)", (held_pid,))
    assert_nothing_committed_then_rerun_copies(e, manifest, sources, chunk, errors, rows=3000)


@pytest.mark.parametrize(("end_source_copy", "errors_seen"), [
    ("pg_cancel_backend", ("canceling statement",)),  # an error result after the rows so far
    # The connection gone mid-row: libpq reports the server's last message when it read it before the close.
    ("pg_terminate_backend", ("closed the connection", "terminating connection due to administrator command")),
])
def test_source_failing_mid_stream_leaves_nothing_and_rerun_completes(estate_with_schema, manifest, sources, end_source_copy,
                                                                      errors_seen):
    # Rows are read from libpq directly: a source that fails mid-COPY must still fail the chunk whole.
    e = estate_with_schema
    source_sql(e, "wallet", "TRUNCATE reputation_events")
    target_sql(e, "TRUNCATE wallet.reputation_events")
    with e.target_endpoint().connect(autocommit=True) as conn:
        ensure_chunk_ledger(conn, manifest)  # when this test runs before any other copy of the module
    target_sql(e, "DELETE FROM migration_control.backfill_chunks WHERE table_name = 'wallet.reputation_events'")
    source_sql(e, "wallet", "INSERT INTO reputation_events (id, user_id, event_id, platform, category, signal_type, score, "
                            "weight, event_date) SELECT g, 1, repeat('x', 200) || g, 'p', 'c', 's', 1, 1, now() "
                            "FROM generate_series(1, 200000) g")
    chunk = TableSegment("wallet.reputation_events", "id", "integer", None, None)
    with target_copy_held(e, manifest, sources, chunk, at_id=100) as (_, errors):
        # With the target held, the source fills its socket and waits to send: end its COPY there.
        deadline = time.monotonic() + 30
        while not source_sql(e, "wallet", f"SELECT {end_source_copy}(pid) FROM pg_stat_activity "
                                          "WHERE query LIKE 'COPY (SELECT%%' AND wait_event = 'ClientWrite'"):
            assert time.monotonic() < deadline, "the source's COPY never waited on the client"
            time.sleep(0.05)
    assert any(seen in str(errors[0]) for seen in errors_seen), errors
    assert_nothing_committed_then_rerun_copies(e, manifest, sources, chunk, errors, rows=200000)


def _copy_error(source, target, manifest, chunk):
    try:
        copy_chunk(source, target, manifest, chunk)
    except Exception as exc:  # the test inspects whatever the copier raised
        return exc
    return None


def test_resync_with_stale_and_extra_rows_converges(estate_with_schema, manifest, sources):
    e = estate_with_schema
    source_sql(e, "wallet", "INSERT INTO device_fingerprints (id, user_id, fingerprint) "
                            "SELECT g, g, 'fp' || g FROM generate_series(1, 400) g")
    copy_table(e, manifest, sources, "wallet.device_fingerprints", target_rows=100)
    # Target drifts: stale values, rows the source never had, a row the source has lost.
    target_sql(e, "UPDATE wallet.device_fingerprints SET ip_address = '10.0.0.1' WHERE id IN (5, 150, 399)")
    target_sql(e, "INSERT INTO wallet.device_fingerprints (id, user_id, fingerprint) VALUES (1000, 1, 'extra'), (250001, 2, 'extra2')")
    target_sql(e, "DELETE FROM wallet.device_fingerprints WHERE id = 200")
    source_sql(e, "wallet", "UPDATE device_fingerprints SET user_agent = 'new agent' WHERE id = 7")
    assert not verify(sources, e.target_endpoint(), manifest, tables=["wallet.device_fingerprints"], state_store=False, sequences=False)["ok"]
    results = copy_table(e, manifest, sources, "wallet.device_fingerprints", target_rows=100, force=True)
    assert {r["mode"] for r in results} == {"merge"}
    totals = {k: sum(r[k] for r in results) for k in ("inserted", "updated", "deleted")}
    assert totals == {"inserted": 1, "updated": 4, "deleted": 2}
    assert verify(sources, e.target_endpoint(), manifest, tables=["wallet.device_fingerprints"], state_store=False, sequences=False)["ok"]
    again = copy_table(e, manifest, sources, "wallet.device_fingerprints", target_rows=100, force=True)
    assert sum(r["updated"] + r["inserted"] + r["deleted"] for r in again) == 0
    assert {copies for _, copies in ledger_rows(e, "wallet.device_fingerprints")} == {3}


def test_hostile_values_round_trip(estate_with_schema, manifest, sources):
    e = estate_with_schema
    hostile = ["tab\there", "new\nline\r\n", "back\\slash\\N", "quote ' \" `", "unicode ✓ 日本語 🚀 \u00e9", "", None, "\\.", ",;|"]
    with sources["wallet"].connect() as conn:
        with conn.cursor() as cur:
            for i, text in enumerate(hostile, start=1):
                cur.execute(
                    "INSERT INTO public.claims (id, claimant_user_id, description, platform_id, claim_amount, timeline, created_at, processed_at) "
                    "VALUES (%s, 1, %s, %s, %s::numeric, %s::jsonb, %s::timestamp, %s::timestamp)",
                    (i, text, text, ["NaN", "1.25", None, "-0.01"][i % 4],
                     '{"k": "v\\t\\n\\\\ \\"q\\" ✓", "n": [1.5, null, true]}' if i % 2 else None,
                     ["infinity", "-infinity", "2024-02-29 23:59:59.999999"][i % 3],
                     None if i % 2 else "epoch"),
                )
    copy_table(e, manifest, sources, "wallet.claims", target_rows=3)
    result = verify(sources, e.target_endpoint(), manifest, tables=["wallet.claims"], state_store=False, sequences=False)
    assert result["ok"], result["failures"]
    assert target_sql(e, "SELECT count(*) FROM wallet.claims WHERE description = ''")[0][0] == 1
    assert target_sql(e, "SELECT count(*) FROM wallet.claims WHERE description IS NULL")[0][0] == 1
    assert target_sql(e, "SELECT count(*) FROM wallet.claims WHERE claim_amount = 'NaN'")[0][0] >= 1


def test_column_mismatch_fails_before_writing(estate_with_schema, manifest, sources):
    e = estate_with_schema
    source_sql(e, "wallet", "INSERT INTO evidence (user_id) VALUES (1), (2)")
    target_sql(e, "ALTER TABLE wallet.evidence ALTER COLUMN storage_url TYPE varchar(10)")
    try:
        with pytest.raises(ColumnMismatch, match=r"wallet\.evidence: column storage_url is text in source, character varying\(10\) in target"):
            copy_chunk(sources["wallet"], e.target_endpoint(), manifest, TableSegment("wallet.evidence", "id", "integer"))
        assert target_sql(e, "SELECT count(*) FROM wallet.evidence")[0][0] == 0
        assert ledger_rows(e, "wallet.evidence") == []
    finally:
        target_sql(e, "ALTER TABLE wallet.evidence ALTER COLUMN storage_url TYPE text")


def test_sequences_synced_so_insert_without_id_succeeds(estate_with_schema, manifest, sources):
    e = estate_with_schema
    source_sql(e, "wallet", "INSERT INTO users (username, password) SELECT 'u' || g, 'p' FROM generate_series(1, 20) g")
    # An id far above its table's sequence, as an import with explicit ids leaves one (a table no other test copies).
    source_sql(e, "wallet", "INSERT INTO subscriptions (id, user_id, plan) VALUES (60000000, 1, 'pro')")
    copy_table(e, manifest, sources, "wallet.users", target_rows=1000)
    copy_table(e, manifest, sources, "wallet.subscriptions", target_rows=1000)
    with pytest.raises(psycopg.errors.UniqueViolation):
        target_sql(e, "INSERT INTO wallet.users (username, password) VALUES ('before-sync', 'p')")
    synced = sync_sequences(sources, e.target_endpoint(), manifest, gap=10)
    users = next(s for s in synced if s["table"] == "wallet.users")
    assert users["source_position"] == 20 and users["target_after"] == 30 and users["changed"]
    # The target's key max wins over the source's sequence.
    subscriptions = next(s for s in synced if s["table"] == "wallet.subscriptions")
    assert subscriptions["target_after"] >= 60000000
    again = sync_sequences(sources, e.target_endpoint(), manifest, gap=10)
    assert not any(s["changed"] for s in again)
    new_id = target_sql(e, "INSERT INTO wallet.users (username, password) VALUES ('after-sync', 'p') RETURNING id")[0][0]
    assert new_id == 31


def test_plan_all_stays_within_the_mapped_task_limit(estate_with_schema, manifest, sources):
    chunks = plan_all(manifest, sources, target_rows=10, max_chunks_total=60)
    assert len(chunks) <= 60
    assert {c.table for c in chunks} == {t.qualified for t in manifest.tables}
    for table in {c.table for c in chunks}:
        mine = [c for c in chunks if c.table == table]
        assert mine[0].lower is None and mine[-1].upper is None
        assert all(a.upper == b.lower for a, b in zip(mine, mine[1:], strict=False))


def test_enum_array_column_is_copied_in_text_format(estate_with_schema, manifest, sources, tmp_path):
    # Binary COPY carries an array's element type OID, and a user enum's OID differs per database.
    e = estate_with_schema
    source_sql(e, "wallet", "CREATE TYPE mood AS ENUM ('calm', 'busy')")
    source_sql(e, "wallet", "CREATE TABLE tagged (id serial PRIMARY KEY, moods mood[], note text)")
    source_sql(e, "wallet", "INSERT INTO tagged (moods, note) SELECT ARRAY['calm', 'busy']::mood[], 'n' || g FROM generate_series(1, 30) g")
    target_sql(e, "CREATE TYPE wallet.unrelated AS ENUM ('x')")
    target_sql(e, "CREATE TYPE wallet.mood AS ENUM ('calm', 'busy')")
    target_sql(e, "CREATE TABLE wallet.tagged (id serial PRIMARY KEY, moods wallet.mood[], note text)")
    raw = yaml.safe_load(manifest.file.read_text())
    raw["services"]["wallet"]["tables"]["tagged"] = {"key": ["id"]}
    (tmp_path / "lab.yaml").write_text(yaml.safe_dump(raw))
    lab = load_manifest(tmp_path / "lab.yaml")
    result = copy_chunk(sources["wallet"], e.target_endpoint(), lab, TableSegment("wallet.tagged", "id", "integer"))
    assert (result["format"], result["rows"]) == ("text", 30)
    assert verify(sources, e.target_endpoint(), lab, tables=["wallet.tagged"], state_store=False, sequences=False)["ok"]


def test_char_keys_are_split_in_byte_order_and_copied_once_each(estate_with_schema, manifest, sources, tmp_path):
    # char(n) is a text kind: cut at the unpadded text's byte order, every row lands in exactly one chunk.
    e = estate_with_schema
    source_sql(e, "wallet", "CREATE TABLE coded (code char(6) PRIMARY KEY, note text)")
    source_sql(e, "wallet", "INSERT INTO coded SELECT left(md5(g::text), 1 + g % 5) || CASE WHEN g % 7 = 0 THEN 'Z' ELSE '' END,"
                            " 'n' || g FROM generate_series(1, 400) g ON CONFLICT DO NOTHING")
    target_sql(e, "CREATE TABLE wallet.coded (code char(6) PRIMARY KEY, note text)")
    raw = yaml.safe_load(manifest.file.read_text())
    raw["services"]["wallet"]["tables"]["coded"] = {"key": ["code"]}
    (tmp_path / "lab.yaml").write_text(yaml.safe_dump(raw))
    lab = load_manifest(tmp_path / "lab.yaml")
    with sources["wallet"].connect(autocommit=True) as conn:
        chunks = plan_chunks(conn, lab.table("wallet.coded"), target_rows=50)
        rows = conn.execute("SELECT count(*) FROM public.coded").fetchone()[0]
    assert len(chunks) >= 5 and {c.kind for c in chunks} == {KeyKind.TEXT}
    copied = [copy_chunk(sources["wallet"], e.target_endpoint(), lab, c, run_id="test") for c in chunks]
    assert sum(r["rows"] for r in copied) == rows
    assert verify(sources, e.target_endpoint(), lab, tables=["wallet.coded"], state_store=False, sequences=False)["ok"]
