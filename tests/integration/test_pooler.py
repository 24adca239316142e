"""The pooler path as the apps use it: a real pgbouncer in transaction mode, offering TLS,
reached with ``?pgbouncer=true&sslmode=require`` (runbook 3 and 4.1).

Transaction pooling hands each transaction whichever server connection is free,
so anything a session keeps on the server (a prepared statement) is not there
next time, or belongs to another client. The pooled Endpoint turns server-side
prepared statements off; a plain psycopg connection that prepares shows the failures.
"""

from __future__ import annotations

import shutil

import psycopg
import pytest

from migration_engine.endpoints import from_url
from migration_engine.local.estate import TARGET_DB, TARGET_OWNER, Estate
from migration_engine.local.pgbouncer import Pgbouncer
from migration_engine.local.tls import make_ca, make_server_certificate, tls_folder

pytestmark = pytest.mark.integration

APP_FLAGS = "pgbouncer=true&sslmode=require"


@pytest.fixture(scope="module")
def pooler_ca():
    folder = tls_folder()
    yield make_ca(folder, "pooler test CA")
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def estate(manifest, pooler_ca):
    """The usual estate, with its pgbouncer offering TLS to clients like a managed pooler."""
    certificate = make_server_certificate(pooler_ca, pooler_ca.cert_file.parent / "pooler")
    running = Estate(manifest, with_pooler=False).start()
    try:
        running.pooler = Pgbouncer(
            running.target, {TARGET_OWNER: running.target_password},
            client_tls_cert_file=certificate.cert_file, client_tls_key_file=certificate.key_file,
        ).start()
        running.target.execute("CREATE SCHEMA smoke AUTHORIZATION migrator", dbname=TARGET_DB)
        yield running
    finally:
        running.stop()


def app_url(estate: Estate, flags: str = APP_FLAGS) -> str:
    return estate.pooler.url(TARGET_DB, TARGET_OWNER, estate.target_password, extra=flags)


@pytest.fixture
def fresh_pooler(estate):
    """A pgbouncer with no server connections yet: prepared statements left on server
    connections by earlier clients outlive those clients, so each pitfall starts clean."""
    pooler = Pgbouncer(estate.target, {TARGET_OWNER: estate.target_password}).start()
    yield pooler
    pooler.destroy()


def plain_conninfo(estate: Estate, pooler: Pgbouncer) -> str:
    """The pooler reached by a client that does not know it is a pooler (no pgbouncer flag)."""
    return pooler.url(TARGET_DB, TARGET_OWNER, estate.target_password, extra="sslmode=disable")


def test_app_url_goes_through_pgbouncer_over_tls(estate):
    endpoint = from_url("target (pooler)", app_url(estate))
    assert endpoint.pooled is True
    with endpoint.named("credity-wallet").connect() as conn:
        assert conn.info.pgconn.ssl_in_use is True
        # The port is pgbouncer's, and the session behind it is on the target server.
        assert conn.info.port == estate.pooler.port != estate.target.port
        assert conn.execute("SELECT current_database(), current_user").fetchone() == (TARGET_DB, TARGET_OWNER)


def test_verify_full_against_the_pooler(estate, pooler_ca):
    url = app_url(estate, f"pgbouncer=true&sslmode=verify-full&sslrootcert={pooler_ca.cert_file}")
    with from_url("target (pooler)", url).connect(autocommit=True) as conn:
        assert conn.info.pgconn.ssl_in_use is True


def test_app_like_queries_through_the_pooler(estate):
    endpoint = from_url("target (pooler)", app_url(estate))
    with endpoint.connect() as conn:
        with conn.transaction():
            conn.execute("CREATE TABLE IF NOT EXISTS smoke.sessions (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
                         " user_name text NOT NULL, payload jsonb, created_at timestamptz NOT NULL DEFAULT now())")
        for n in range(40):
            with conn.transaction():
                conn.execute("INSERT INTO smoke.sessions (user_name, payload) VALUES (%s, %s::jsonb)",
                             (f"user {n} 'quoted' \\ tab\t", f'{{"n": {n}}}'))
        with conn.transaction():
            row = conn.execute("SELECT count(*), sum((payload->>'n')::int) FROM smoke.sessions WHERE user_name LIKE %s",
                               ("user %",)).fetchone()
            assert row == (40, sum(range(40)))
            updated = conn.execute("UPDATE smoke.sessions SET payload = payload || %s::jsonb WHERE (payload->>'n')::int < %s",
                                   ('{"seen": true}', 10)).rowcount
            assert updated == 10
        with conn.cursor() as cur:
            cur.execute("SELECT user_name FROM smoke.sessions WHERE (payload->>'n')::int = %s", (3,))
            assert cur.fetchone() == ("user 3 'quoted' \\ tab\t",)


def test_application_name_reaches_the_server_through_the_pooler(estate):
    with from_url("target (pooler)", app_url(estate)).named("credity-issuer").connect(autocommit=True) as conn:
        assert conn.execute("SELECT current_setting('application_name')").fetchone() == ("credity-issuer",)


def test_prepared_statement_already_exists_on_a_shared_server_connection(estate, fresh_pooler):
    """Client A prepares _pg3_0; pgbouncer gives the same server connection to client B next,
    whose own first prepared statement is also named _pg3_0."""
    with psycopg.connect(plain_conninfo(estate, fresh_pooler), autocommit=True, prepare_threshold=0) as a, \
         psycopg.connect(plain_conninfo(estate, fresh_pooler), autocommit=True, prepare_threshold=0) as b:
        assert a.execute("SELECT %s::int + 1", (1,)).fetchone() == (2,)
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement, match='prepared statement "_pg3_0" already exists'):
            b.execute("SELECT %s::text || 'x'", ("a",))


def test_prepared_statement_missing_on_another_server_connection(estate, fresh_pooler):
    """A prepares on server connection S1; while B holds S1 in a transaction, A's next
    transaction runs on S2, where its prepared statement does not exist."""
    with psycopg.connect(plain_conninfo(estate, fresh_pooler), autocommit=True, prepare_threshold=0) as a, \
         psycopg.connect(plain_conninfo(estate, fresh_pooler), autocommit=False, prepare_threshold=None) as b:
        a.execute("SELECT %s::int + 1", (1,))
        b.execute("SELECT 1")  # B now holds the server connection A prepared on
        with pytest.raises(psycopg.errors.InvalidSqlStatementName, match='prepared statement "_pg3_0" does not exist'):
            a.execute("SELECT %s::int + 1", (2,))
        b.rollback()


def test_pooled_endpoint_works_across_many_interleaved_transactions(estate):
    """The same interleavings that break prepared statements, through Endpoints with pooled=True."""
    endpoint = from_url("target (pooler)", app_url(estate))
    with endpoint.connect(autocommit=True) as a, endpoint.connect(autocommit=False) as b:
        assert (a.prepare_threshold, b.prepare_threshold) == (None, None)
        total = 0
        for n in range(100):
            total += a.execute("SELECT %s::int + 1", (n,)).fetchone()[0]
            assert b.execute("SELECT %s::text || 'x'", (str(n),)).fetchone() == (f"{n}x",)
            if n % 3 == 0:
                # B keeps its transaction (and server connection) open across A's next one.
                total += a.execute("SELECT %s::int + 1", (n,)).fetchone()[0]
            b.commit()
        assert total == sum(n + 1 for n in range(100)) + sum(n + 1 for n in range(0, 100, 3))
