"""The runbook's optional hardening env honoured on every direct connection:
DB_APPLICATION_NAME (seen by the DBA), DB_CONNECTION_TIMEOUT_MS and the statement/lock timeouts."""

from __future__ import annotations

import socket

import psycopg
import pytest

from migration_engine.dag_support import Connections
from migration_engine.endpoints import EndpointError, from_url
from migration_engine.local.servers import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server():
    with PostgresServer("settings") as running:
        running.execute("CREATE TABLE held (id int PRIMARY KEY)")
        running.execute("INSERT INTO held VALUES (1)")
        yield running


@pytest.fixture
def endpoint(server):
    return from_url("target (direct)", server.url())


def activity_name(server, pid: int) -> str:
    with psycopg.connect(server.dsn(), autocommit=True) as admin:
        return admin.execute("SELECT application_name FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]


def test_db_application_name_shows_in_pg_stat_activity(server, endpoint, monkeypatch):
    monkeypatch.setenv("DB_APPLICATION_NAME", "credity-wallet")
    with endpoint.connect() as conn:
        assert activity_name(server, conn.info.backend_pid) == "credity-wallet"


def test_dag_application_name_without_the_env(server, endpoint, monkeypatch):
    monkeypatch.delenv("DB_APPLICATION_NAME", raising=False)
    with endpoint.named(Connections("backfill").application_name).connect() as conn:
        assert activity_name(server, conn.info.backend_pid) == "credity-migration-backfill"


def test_blocked_statement_fails_with_lock_timeout_instead_of_hanging(server, endpoint, monkeypatch):
    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "300")
    with psycopg.connect(server.dsn()) as holder:
        holder.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        with endpoint.connect() as conn:
            with pytest.raises(psycopg.errors.LockNotAvailable, match="canceling statement due to lock timeout"):
                conn.execute("SELECT count(*) FROM public.held")
        holder.rollback()


def test_statement_timeout_cancels_a_long_statement(endpoint, monkeypatch):
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "200")
    with endpoint.connect() as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "200ms"
        with pytest.raises(psycopg.errors.QueryCanceled, match="canceling statement due to statement timeout"):
            conn.execute("SELECT pg_sleep(5)")


def test_connection_timeout_applies_to_a_server_that_never_answers(monkeypatch):
    """The kernel completes the TCP handshake on a listening socket nobody reads: the connect gives up with a clear, named error."""
    monkeypatch.setenv("DB_CONNECTION_TIMEOUT_MS", "1000")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        endpoint = from_url("issuer source", f"postgresql://app:s3cret-pw@127.0.0.1:{port}/issuer")
        with pytest.raises(EndpointError, match=r"cannot connect to issuer source \(127\.0\.0\.1:\d+/issuer as app\).*timeout") as caught:
            endpoint.connect()
    assert "s3cret-pw" not in str(caught.value)


def test_bad_timeout_value_is_named(endpoint, monkeypatch):
    monkeypatch.setenv("DB_CONNECTION_TIMEOUT_MS", "5s")
    with pytest.raises(EndpointError, match="DB_CONNECTION_TIMEOUT_MS must be a whole number"):
        endpoint.connect()
